"""A ban's disconnects as durable work: which live participants are still to disconnect.

A ban answers at once; its user's live participants are disconnected afterwards, by every
replica, within IVS's DisconnectParticipant rate (see `mapping.disconnect_worker`). The
work is kept where every replica sees it, so it outlives the replica that took the ban:

- `ts:{ts}:dq`: the queue, a sorted set of `<ban id>/<participant id>` scored by the
  moment (ms, Redis's clock) the item is due. A claim moves its item's score to the end
  of a lease, atomically: two replicas never hold one item at once, and the item of a
  replica that died comes back when its lease ends.
- `ts:{ts}:dq:i` (the item: stage ARN, when queued), `ts:{ts}:dq:c` (the holder's claim
  token) and `ts:{ts}:dq:n` (attempts so far): hashes by the same member.
- `ts:{ts}:bd:<ban id>`: the ban's tally (`total`, then a count per outcome) and
  `p:<participant id>`, each participant's outcome (`pending` until done). It expires a
  day after a ban with an end; it goes when the ban is lifted.

A holder whose lease ended has lost its claim: its finish or retry is refused, so an
outcome is counted once. The memory twin keeps the same in this process (no Redis: a
single replica), and passes the same contract tests.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import msgspec

from token_service.infra.redis import HASH_TAG, RedisClient, reply_text

#: What became of one participant of a ban.
PENDING = "pending"
DISCONNECTED = "disconnected"
#: IVS had no such connected participant (never joined, left, or already disconnected).
NOT_CONNECTED = "not-connected"
#: IVS refused the call for good (a bad request), or it kept failing for `GIVE_UP_SECONDS`.
FAILED = "failed"
#: The ban was lifted or had ended before the participant's turn.
CANCELLED = "cancelled"
OUTCOMES = (DISCONNECTED, NOT_CONNECTED, FAILED, CANCELLED)

#: A ban with an end keeps its tally this long after it.
TALLY_AFTER_END_SECONDS = 24 * 3600

QUEUE_KEY = f"ts:{HASH_TAG}:dq"
ITEMS_KEY = f"ts:{HASH_TAG}:dq:i"
CLAIMS_KEY = f"ts:{HASH_TAG}:dq:c"
ATTEMPTS_KEY = f"ts:{HASH_TAG}:dq:n"


def tally_key(ban_id: str) -> str:
    return f"ts:{HASH_TAG}:bd:{ban_id}"


@dataclass(frozen=True)
class Target:
    """A live participant a ban disconnects."""

    participant_id: str
    stage_arn: str


@dataclass(frozen=True)
class Tally:
    """A ban's disconnects so far."""

    total: int = 0
    disconnected: int = 0
    not_connected: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def pending(self) -> int:
        return max(
            0, self.total - self.disconnected - self.not_connected - self.failed - self.cancelled
        )

    @property
    def status(self) -> Literal["pending", "done", "partial"]:
        """`pending` while any is; then `done`, or `partial` when any failed."""
        if self.pending:
            return "pending"
        return "partial" if self.failed else "done"

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> Tally:
        return cls(
            total=counts.get("total", 0),
            disconnected=counts.get(DISCONNECTED, 0),
            not_connected=counts.get(NOT_CONNECTED, 0),
            failed=counts.get(FAILED, 0),
            cancelled=counts.get(CANCELLED, 0),
        )


@dataclass(frozen=True)
class Item:
    """One claimed participant of one ban: its holder must finish or retry it."""

    ban_id: str
    participant_id: str
    stage_arn: str
    #: Unix seconds it was queued (for giving up on an IVS that keeps failing).
    queued_at: int
    #: This claim included.
    attempts: int
    claim: str

    @property
    def member(self) -> str:
        return f"{self.ban_id}/{self.participant_id}"


@dataclass(frozen=True)
class Claim:
    """What a claim found: an item, or none due (then when the next one is)."""

    item: Item | None
    #: Items in the queue (held ones included), for the pending gauge.
    queued: int
    #: Seconds until the next item is due, when none is now; None: the queue is empty.
    next_due_seconds: float | None = None


class DisconnectWork(Protocol):
    async def add(self, ban_id: str, targets: Sequence[Target], *, expire_at: int | None) -> Tally:
        """Queue the targets not queued for this ban before (a retried ban adds only what
        the first missed); the ban's tally, created if new."""
        ...

    async def claim(self, lease_seconds: float) -> Claim: ...

    async def finish(self, item: Item, outcome: str) -> bool:
        """Record the outcome and drop the item; False if the claim was lost meanwhile."""
        ...

    async def retry(self, item: Item, delay_seconds: float) -> bool:
        """Give the item back, due after `delay_seconds`; False if the claim was lost."""
        ...

    async def tally(self, ban_id: str) -> Tally | None:
        """None for a ban without disconnect work on record (made before there was)."""
        ...

    async def tallies(self, ban_ids: Sequence[str]) -> list[Tally | None]: ...

    async def outcomes(self, ban_id: str) -> dict[str, str]:
        """Each participant of the ban and what became of it (`pending` until done)."""
        ...

    async def forget(self, ban_id: str) -> int:
        """The ban is lifted: its pending items dropped (returned: how many), its tally
        deleted."""
        ...


class _Stored(msgspec.Struct, array_like=True):
    stage: str
    at: int


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Stored)


# --------------------------------------------------------------------------- Redis

_TALLY_FIELDS = ("total", *OUTCOMES)

# KEYS: queue, items, tally. ARGV: ban id, expire at (unix s; 0: none), then per target
# its participant id and its item. Returns the tally's fields (`_TALLY_FIELDS`), read in
# the same round trip.
_ADD = (
    """
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('HSETNX', KEYS[3], 'total', 0)
local added = 0
for i = 3, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[3], 'p:' .. ARGV[i], 'pending') == 1 then
    local member = ARGV[1] .. '/' .. ARGV[i]
    redis.call('HSET', KEYS[2], member, ARGV[i + 1])
    redis.call('ZADD', KEYS[1], 'NX', now, member)
    added = added + 1
  end
end
redis.call('HINCRBY', KEYS[3], 'total', added)
if ARGV[2] ~= '0' then redis.call('EXPIREAT', KEYS[3], ARGV[2]) end
"""
    + f"return redis.call('HMGET', KEYS[3], {', '.join(repr(f) for f in _TALLY_FIELDS)})\n"
)

# KEYS: queue, items, claims, attempts. ARGV: lease (ms), claim token.
# Returns {1, member, item, attempts, queued}, {0, ms until the next is due (-1: none),
# queued}, or {2} for an item whose details are gone (dropped: claim again).
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local queued = redis.call('ZCARD', KEYS[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now), 'LIMIT', 0, 1)
if #due == 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first == 0 then return {0, -1, queued} end
  return {0, string.format('%d', tonumber(first[2]) - now), queued}
end
local member = due[1]
local item = redis.call('HGET', KEYS[2], member)
if not item then
  redis.call('ZREM', KEYS[1], member)
  redis.call('HDEL', KEYS[3], member)
  redis.call('HDEL', KEYS[4], member)
  return {2}
end
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[1])), member)
redis.call('HSET', KEYS[3], member, ARGV[2])
local attempts = redis.call('HINCRBY', KEYS[4], member, 1)
return {1, member, item, attempts, queued}
"""

# KEYS: queue, items, claims, attempts, tally. ARGV: member, claim token, outcome,
# participant id. Returns 1, or 0 when the claim was lost (nothing done).
_FINISH = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
local field = 'p:' .. ARGV[4]
if redis.call('HGET', KEYS[5], field) == 'pending' then
  redis.call('HSET', KEYS[5], field, ARGV[3])
  redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
end
return 1
"""

# KEYS: queue, claims. ARGV: member, claim token, delay (ms). Returns 1, or 0 (claim lost).
_RETRY = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

# KEYS: queue, items, claims, attempts, tally. ARGV: ban id. Returns the items dropped.
_FORGET = """
local fields = redis.call('HGETALL', KEYS[5])
local dropped = 0
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'p:' and fields[i + 1] == 'pending' then
    local member = ARGV[1] .. '/' .. string.sub(fields[i], 3)
    dropped = dropped + redis.call('ZREM', KEYS[1], member)
    redis.call('HDEL', KEYS[2], member)
    redis.call('HDEL', KEYS[3], member)
    redis.call('HDEL', KEYS[4], member)
  end
end
redis.call('DEL', KEYS[5])
return dropped
"""

_QUEUE_KEYS = [QUEUE_KEY, ITEMS_KEY, CLAIMS_KEY, ATTEMPTS_KEY]


def _counts(values: Sequence[bytes | str | None]) -> Tally | None:
    if values[0] is None:
        return None
    return Tally.of(
        {name: int(v) for name, v in zip(_TALLY_FIELDS, values, strict=True) if v is not None}
    )


class RedisDisconnectWork:
    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._add = client.register_script(_ADD)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._retry = client.register_script(_RETRY)
        self._forget = client.register_script(_FORGET)

    async def add(self, ban_id: str, targets: Sequence[Target], *, expire_at: int | None) -> Tally:
        queued_at = int(time.time())
        args: list[str | bytes | int] = [ban_id, expire_at or 0]
        for target in targets:
            args += [target.participant_id, _encoder.encode(_Stored(target.stage_arn, queued_at))]
        counts = await self._add(keys=[*_QUEUE_KEYS[:2], tally_key(ban_id)], args=args)
        return _counts(counts) or Tally()

    async def claim(self, lease_seconds: float) -> Claim:
        # Idle replicas ask every few seconds: a plain read when the queue is empty, so an
        # idle poll runs no script (the token path's scripts stay the only EVALSHA calls,
        # which `make bench` counts per token).
        if not await self._client.zrange(QUEUE_KEY, 0, 0):
            return Claim(None, 0, None)
        token = secrets.token_hex(8)
        while True:
            raw = await self._claim(keys=_QUEUE_KEYS, args=[int(lease_seconds * 1000), token])
            if int(raw[0]) == 1:
                break
            if int(raw[0]) == 0:
                wait = int(raw[1])
                return Claim(None, int(raw[2]), None if wait < 0 else wait / 1000)
        ban_id, participant_id = reply_text(raw[1]).split("/", 1)
        stored = _decoder.decode(raw[2])
        item = Item(ban_id, participant_id, stored.stage, stored.at, int(raw[3]), token)
        return Claim(item, int(raw[4]))

    async def finish(self, item: Item, outcome: str) -> bool:
        done = await self._finish(
            keys=[*_QUEUE_KEYS, tally_key(item.ban_id)],
            args=[item.member, item.claim, outcome, item.participant_id],
        )
        return bool(done)

    async def retry(self, item: Item, delay_seconds: float) -> bool:
        done = await self._retry(
            keys=[QUEUE_KEY, CLAIMS_KEY],
            args=[item.member, item.claim, max(0, int(delay_seconds * 1000))],
        )
        return bool(done)

    async def tally(self, ban_id: str) -> Tally | None:
        return (await self.tallies([ban_id]))[0]

    async def tallies(self, ban_ids: Sequence[str]) -> list[Tally | None]:
        if not ban_ids:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for ban_id in ban_ids:
                pipe.hmget(tally_key(ban_id), list(_TALLY_FIELDS))
            answers = await pipe.execute()
        return [_counts(values) for values in answers]

    async def outcomes(self, ban_id: str) -> dict[str, str]:
        fields = await self._client.hgetall(tally_key(ban_id))
        return {
            reply_text(k)[2:]: reply_text(v)
            for k, v in fields.items()
            if reply_text(k).startswith("p:")
        }

    async def forget(self, ban_id: str) -> int:
        dropped = await self._forget(keys=[*_QUEUE_KEYS, tally_key(ban_id)], args=[ban_id])
        return int(dropped)


# --------------------------------------------------------------------------- memory


@dataclass
class _Queued:
    stage_arn: str
    queued_at: int
    due: float
    attempts: int = 0
    claim: str | None = None


@dataclass
class _BanWork:
    outcomes: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    expire_at: int | None = None


class MemoryDisconnectWork:
    """The in-process twin: no Redis configured (development, a single replica)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queue: dict[tuple[str, str], _Queued] = {}
        self._bans: dict[str, _BanWork] = {}

    def _work(self, ban_id: str) -> _BanWork | None:
        work = self._bans.get(ban_id)
        if work is not None and work.expire_at is not None and work.expire_at <= time.time():
            del self._bans[ban_id]
            return None
        return work

    async def add(self, ban_id: str, targets: Sequence[Target], *, expire_at: int | None) -> Tally:
        work = self._work(ban_id) or self._bans.setdefault(ban_id, _BanWork(expire_at=expire_at))
        now = self._clock()
        for target in targets:
            if target.participant_id in work.outcomes:
                continue
            work.outcomes[target.participant_id] = PENDING
            work.counts["total"] = work.counts.get("total", 0) + 1
            self._queue[(ban_id, target.participant_id)] = _Queued(
                target.stage_arn, int(time.time()), now
            )
        return Tally.of(work.counts)

    async def claim(self, lease_seconds: float) -> Claim:
        now = self._clock()
        if not self._queue:
            return Claim(None, 0, None)
        key, queued = min(self._queue.items(), key=lambda pair: pair[1].due)
        if queued.due > now:
            return Claim(None, len(self._queue), queued.due - now)
        queued.due = now + lease_seconds
        queued.attempts += 1
        queued.claim = secrets.token_hex(8)
        item = Item(
            key[0], key[1], queued.stage_arn, queued.queued_at, queued.attempts, queued.claim
        )
        return Claim(item, len(self._queue))

    def _held(self, item: Item) -> _Queued | None:
        queued = self._queue.get((item.ban_id, item.participant_id))
        return queued if queued is not None and queued.claim == item.claim else None

    async def finish(self, item: Item, outcome: str) -> bool:
        if self._held(item) is None:
            return False
        del self._queue[(item.ban_id, item.participant_id)]
        work = self._work(item.ban_id)
        if work is not None and work.outcomes.get(item.participant_id) == PENDING:
            work.outcomes[item.participant_id] = outcome
            work.counts[outcome] = work.counts.get(outcome, 0) + 1
        return True

    async def retry(self, item: Item, delay_seconds: float) -> bool:
        queued = self._held(item)
        if queued is None:
            return False
        queued.due = self._clock() + max(0.0, delay_seconds)
        queued.claim = None
        return True

    async def tally(self, ban_id: str) -> Tally | None:
        work = self._work(ban_id)
        return None if work is None else Tally.of(work.counts)

    async def tallies(self, ban_ids: Sequence[str]) -> list[Tally | None]:
        return [await self.tally(ban_id) for ban_id in ban_ids]

    async def outcomes(self, ban_id: str) -> dict[str, str]:
        work = self._work(ban_id)
        return {} if work is None else dict(work.outcomes)

    async def forget(self, ban_id: str) -> int:
        work = self._bans.pop(ban_id, None)
        if work is None:
            return 0
        dropped = [pid for pid, outcome in work.outcomes.items() if outcome == PENDING]
        for pid in dropped:
            self._queue.pop((ban_id, pid), None)
        return len(dropped)

"""The participant-ID mapping log: which app user got which participant, looked up later.

One `MappingRecord` per token handed out, in both modes, written before the token
is returned (the admission gate writes it in the same Redis round trip as the rate
limits in local mode). IVS shows moderators and webhooks only a participant id;
this record is how an operator gets from it to the app user, and acts on it.

The Redis store keeps records as `mapping.records` lays them out; the memory twin keeps
the same records in dicts and passes the same contract tests.
"""

from __future__ import annotations

import enum
import math
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from token_service.domain import user_key
from token_service.infra.lane import RedisLane, script_call
from token_service.infra.redis import RedisClient
from token_service.mapping.records import (
    _ID_WIDTH,
    ANY_ISSUER,
    BAN_DECODER,
    BANS_KEY,
    CHANGE_DECODER,
    DISCONNECT_DECODER,
    EVENT_DECODER,
    JSON_ENCODER,
    MAX_TOKEN_SECONDS,
    OVERRIDE_DECODER,
    Ban,
    CapabilityChange,
    CapabilityOverride,
    Disconnect,
    MappingRecord,
    Page,
    ParticipantView,
    StageEvent,
    ban_key,
    change_order,
    decode_record,
    encode_record,
    index_member,
    record_key,
    side_key,
    stage_index_key,
    user_index_key,
    user_index_key_of,
    user_keys_key,
)


def _bytes(value: bytes | str) -> bytes:
    # The client is built without decode_responses, so these are bytes; typed loosely.
    return value if isinstance(value, bytes) else value.encode()


def _cursor_bound(cursor: str | None) -> str:
    return "+" if cursor is None else "(" + cursor


class MappingStore(Protocol):
    """Reads and the writes that happen outside the admission gate."""

    async def record(self, record: MappingRecord) -> None: ...

    async def get(self, participant_id: str) -> ParticipantView | None: ...

    async def by_user(
        self, user_id: str, *, issuer: str | None, limit: int, cursor: str | None
    ) -> Page:
        """The participants of (issuer, user_id), newest first; `issuer` `ANY_ISSUER`: of the
        user id from every issuer."""
        ...

    async def by_stage(
        self, stage_arn: str, *, since: int | None, limit: int, cursor: str | None
    ) -> Page: ...

    async def mark_disconnected(self, participant_id: str, disconnect: Disconnect) -> bool: ...

    async def add_event(self, participant_id: str, event: StageEvent) -> bool: ...

    async def add_ban(self, ban: Ban) -> Ban:
        """Store `ban`, unless an equal ban (same user, issuer, stage and end) is in force:
        the ban in force is returned, `ban` itself when stored."""
        ...

    async def bans(self) -> list[Ban]: ...

    async def remove_ban(self, ban_id: str) -> Ban | None: ...

    async def get_ban(self, ban_id: str) -> Ban | None:
        """The ban as stored (whether it has ended or not), None when there is none."""
        ...

    async def exchange(
        self,
        record: MappingRecord,
        change: CapabilityChange,
        *,
        version: int,
        override: CapabilityOverride | None = None,
    ) -> ChangeResult:
        """Replace a participant's record (same id) after an exchange or an admin's PUBLISH
        change, log the change and store `override` (when given), all at once, and only if
        the participant is still at `version` (the `ParticipantView.version` the change was
        decided on): compare-and-set, so of two changes decided on the same state one is
        written and the other told `CONFLICT`, never a mix of the two.

        The change is stored with the version it makes (`version + 1`). The indexes keep
        the first issue.
        """
        ...


class ChangeResult(enum.Enum):
    """What became of a compare-and-set change of one participant (`MappingStore.exchange`)."""

    WRITTEN = 1
    #: No record (never issued, or expired): nothing written.
    GONE = 0
    #: Disconnected since it was read: nothing written (no token for it).
    DISCONNECTED = -1
    #: Changed since it was read (another exchange or admin change won): nothing written.
    CONFLICT = -2


def strongest(bans: Iterable[Ban]) -> Ban | None:
    """Of bans holding one key, the one that ends last (a ban until lifted beats any)."""
    return max(bans, key=lambda b: math.inf if b.until is None else b.until, default=None)


def new_ban_id() -> str:
    return "ban_" + secrets.token_hex(8)


# --------------------------------------------------------------------------- Redis

# Writes one record and its two index entries, and notes the user's key among those of
# its user id. KEYS: record, user index, stage index, the user id's keys.
# ARGV: record value, index member, record expiry (unix s), index trim bound (member),
# the user's key. Shared with the admission gate, which runs it after the limits in the
# same script. A record already there is kept (NX): participant ids are never reused, so
# it is this one's, written by a script whose answer was lost and since changed perhaps
# (an exchange); the outbox replaying the first issue must not undo that change.
RECORD_WRITE_LUA = """
local function write_record(rk, uk, sk, kk, value, member, expire_at, trim_before, user)
  redis.call('SET', rk, value, 'EXAT', expire_at, 'NX')
  for _, ik in ipairs({uk, sk}) do
    redis.call('ZADD', ik, 0, member)
    redis.call('ZREMRANGEBYLEX', ik, '-', '(' .. trim_before)
  end
  redis.call('SADD', kk, user)
  -- Each index lives as long as its longest-lived record. GT first: it is the one that
  -- applies when the index already has an earlier expiry (nearly every write); a key
  -- without an expiry counts as infinite for GT, so NX sets the first one.
  for _, ik in ipairs({uk, sk, kk}) do
    if redis.call('EXPIREAT', ik, expire_at, 'GT') == 0 then
      redis.call('EXPIREAT', ik, expire_at, 'NX')
    end
  end
end
"""

_RECORD_SCRIPT = (
    RECORD_WRITE_LUA
    + "write_record(KEYS[1], KEYS[2], KEYS[3], KEYS[4],\n"
    + "             ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5])\n"
    + "return 1\n"
)

# Writes a side key (disconnect or events) only while the record exists, with the
# record's expiry: an event for an expired or unknown participant must not leave
# orphans. KEYS: record, side key; ARGV: field, value, only-if-new (1/0).
# Returns 1 when written.
_SIDE_SCRIPT = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return 0 end
local written = 1
if ARGV[3] == '1' then
  written = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[2], ttl)
return written
"""


def record_write_args(record: MappingRecord, retention_seconds: int) -> list[bytes | str | int]:
    """ARGV for `write_record`: the value, index member, expiry, trim bound and user key."""
    trim_ms = (int(time.time()) - retention_seconds - MAX_TOKEN_SECONDS) * 1000
    return [
        encode_record(record),
        index_member(record),
        record.expires_at + retention_seconds,
        f"{max(0, trim_ms):0{_ID_WIDTH}d}",
        user_key(record.issuer, record.app_user_id),
    ]


def record_write_keys(record: MappingRecord) -> list[str]:
    return [
        record_key(record.participant_id),
        user_index_key(record.issuer, record.app_user_id),
        stage_index_key(record.stage_arn),
        user_keys_key(record.app_user_id),
    ]


def _view(
    participant_id: str, raw: bytes | None, side: Mapping[bytes, bytes]
) -> ParticipantView | None:
    if raw is None:
        return None
    disconnect = side.get(b"d")
    events = sorted(
        (EVENT_DECODER.decode(v) for k, v in side.items() if k.startswith(b"e:")),
        key=lambda e: (e.at, e.id),
    )
    record = decode_record(raw)
    if record.participant_id != participant_id:
        return None
    history = sorted(
        (CHANGE_DECODER.decode(v) for k, v in side.items() if k.startswith(b"c:")),
        key=change_order,
    )
    override = side.get(b"o")
    return ParticipantView(
        record=record,
        disconnect=DISCONNECT_DECODER.decode(disconnect) if disconnect else None,
        events=tuple(events),
        history=tuple(history),
        override=OVERRIDE_DECODER.decode(override) if override else None,
        version=int(side.get(b"v", b"0")),
    )


# A participant's change, compare-and-set: replaces the record, logs the change, stores
# the admin's override (when one is given) and bumps the version, in one step, only while
# the record exists, is not disconnected and is still at the version the change was
# decided on. KEYS: record, side key. ARGV: record value, expiry (unix s), change field,
# change JSON, expected version, override JSON ('' for none). Returns a `ChangeResult`.
_EXCHANGE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], 'd') == 1 then return -1 end
local version = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if version ~= tonumber(ARGV[5]) then return -2 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', tonumber(ARGV[2]))
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4], 'v', version + 1)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'o', ARGV[6]) end
redis.call('EXPIREAT', KEYS[2], tonumber(ARGV[2]))
return 1
"""


# Stores a ban, unless the ban in force under the same key (same user, issuer and stage)
# ends when it would: then that ban is the answer (a retried request stores no second
# one). KEYS: the bans hash, the ban's key. ARGV: id, ban JSON, until (unix s, or empty:
# none), user id. Returns the ban in force (JSON), or nil when this one was stored.
_ADD_BAN_SCRIPT = """
local current = redis.call('GET', KEYS[2])
if current then
  local raw = redis.call('HGET', KEYS[1], current)
  if raw then
    local held = cjson.decode(raw)
    local ends = held['until']
    if ends == nil or ends == cjson.null then ends = '' else ends = string.format('%d', ends) end
    if ends == ARGV[3] and held['user_id'] == ARGV[4] then return raw end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
-- The key enforces the ban that ends last: a shorter ban of the same user and stage is
-- listed, but must not shorten a longer one's hold (the key would expire with it).
if current then
  local raw = redis.call('HGET', KEYS[1], current)
  if raw then
    local ends = cjson.decode(raw)['until']
    if ends == nil or ends == cjson.null then return false end
    if ARGV[3] ~= '' and tonumber(ends) >= tonumber(ARGV[3]) then return false end
  end
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[2], ARGV[1])
else
  redis.call('SET', KEYS[2], ARGV[1], 'EXAT', ARGV[3])
end
return false
"""

# Lifts a ban in one step. KEYS: the bans hash, the ban's key. ARGV: the ban's id, then
# the ban that should hold the key instead (id and end, '' for none or never), chosen by
# the caller among the other bans of the same key. Returns the lifted ban, or nil.
_REMOVE_BAN_SCRIPT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then
  if ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then
    if ARGV[3] == '' then
      redis.call('SET', KEYS[2], ARGV[2])
    else
      redis.call('SET', KEYS[2], ARGV[2], 'EXAT', ARGV[3])
    end
  else
    redis.call('DEL', KEYS[2])
  end
end
return raw
"""


def change_field(change: CapabilityChange) -> str:
    return f"c:{change.at * 1000:0{_ID_WIDTH}d}:{secrets.token_hex(4)}"


class RedisMappingStore:
    def __init__(
        self, client: RedisClient, *, retention_seconds: int, lane: RedisLane | None = None
    ) -> None:
        self._client = client
        self._retention = retention_seconds
        # ivs mode writes each record after IVS answered, on the token path: the lane.
        self._record_script = script_call(client, lane, _RECORD_SCRIPT)
        self._side_script = client.register_script(_SIDE_SCRIPT)
        self._exchange_script = client.register_script(_EXCHANGE_SCRIPT)
        self._add_ban_script = client.register_script(_ADD_BAN_SCRIPT)
        self._remove_ban_script = client.register_script(_REMOVE_BAN_SCRIPT)

    async def record(
        self,
        record: MappingRecord,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the lane's timer keeps it (infra.lane)
    ) -> None:
        """Write the record and its indexes; `TimeoutError` when Redis has not answered
        within `timeout` seconds (the record may still be written)."""
        await self._record_script(
            record_write_keys(record), record_write_args(record, self._retention), timeout=timeout
        )

    async def get(self, participant_id: str) -> ParticipantView | None:
        # Disconnects and events are rare: they live beside the record, so the common
        # record is a bare string, the smallest thing Redis stores.
        raw = await self._client.get(record_key(participant_id))
        if raw is None:
            return None
        side = await self._client.hgetall(side_key(participant_id))
        return _view(participant_id, _bytes(raw), {_bytes(k): _bytes(v) for k, v in side.items()})

    async def _members(self, index: str, low: str, limit: int, cursor: str | None) -> list[bytes]:
        raw = await self._client.zrevrangebylex(
            index, _cursor_bound(cursor), low, start=0, num=limit + 1
        )
        return [_bytes(m) for m in raw]

    async def _page(self, members: list[bytes], limit: int) -> Page:
        """The page of the `limit` newest of `members` (newest first, one more when there is
        a next page)."""
        more = len(members) > limit
        members = members[:limit]
        ids = [member.decode().split(":", 1)[1] for member in members]
        # Every record and its side hash in one round trip (a ban reads up to 500).
        async with self._client.pipeline(transaction=False) as pipe:
            for participant_id in ids:
                pipe.get(record_key(participant_id))
                pipe.hgetall(side_key(participant_id))
            answers = await pipe.execute() if ids else []
        views: list[ParticipantView] = []
        for participant_id, raw, side in zip(ids, answers[::2], answers[1::2], strict=True):
            view = _view(
                participant_id,
                None if raw is None else _bytes(raw),
                {_bytes(k): _bytes(v) for k, v in side.items()},
            )
            if view is not None:  # expired records leave index entries until trimmed
                views.append(view)
        next_cursor = members[-1].decode() if more and members else None
        return Page(items=tuple(views), next_cursor=next_cursor)

    async def by_user(
        self, user_id: str, *, issuer: str | None, limit: int, cursor: str | None
    ) -> Page:
        if issuer != ANY_ISSUER:
            index = user_index_key(issuer, user_id)
            return await self._page(await self._members(index, "-", limit, cursor), limit)
        # Every issuer: the newest `limit + 1` of each of the user id's indexes, merged.
        # Members are unique (one participant, one user), and sort by time as they are.
        keys = await self._client.smembers(user_keys_key(user_id))
        async with self._client.pipeline(transaction=False) as pipe:
            for key in sorted(_bytes(k).decode() for k in keys):
                pipe.zrevrangebylex(
                    user_index_key_of(key), _cursor_bound(cursor), "-", start=0, num=limit + 1
                )
            answers = await pipe.execute() if keys else []
        members = [_bytes(m) for raw in answers for m in raw]
        return await self._page(sorted(members, reverse=True)[: limit + 1], limit)

    async def by_stage(
        self, stage_arn: str, *, since: int | None, limit: int, cursor: str | None
    ) -> Page:
        low = "-" if since is None else f"[{since * 1000:0{_ID_WIDTH}d}"
        return await self._page(
            await self._members(stage_index_key(stage_arn), low, limit, cursor), limit
        )

    async def mark_disconnected(self, participant_id: str, disconnect: Disconnect) -> bool:
        written = await self._side_script(
            keys=[record_key(participant_id), side_key(participant_id)],
            args=["d", JSON_ENCODER.encode(disconnect).decode(), "0"],
        )
        return bool(written)

    async def add_event(self, participant_id: str, event: StageEvent) -> bool:
        written = await self._side_script(
            keys=[record_key(participant_id), side_key(participant_id)],
            args=[f"e:{event.id}", JSON_ENCODER.encode(event).decode(), "1"],
        )
        return bool(written)

    async def exchange(
        self,
        record: MappingRecord,
        change: CapabilityChange,
        *,
        version: int,
        override: CapabilityOverride | None = None,
    ) -> ChangeResult:
        change = msgspec.structs.replace(change, version=version + 1)
        result = await self._exchange_script(
            keys=[record_key(record.participant_id), side_key(record.participant_id)],
            args=[
                encode_record(record),
                record.expires_at + self._retention,
                change_field(change),
                JSON_ENCODER.encode(change).decode(),
                version,
                "" if override is None else JSON_ENCODER.encode(override).decode(),
            ],
        )
        return ChangeResult(int(result))

    async def add_ban(self, ban: Ban) -> Ban:
        held = await self._add_ban_script(
            keys=[BANS_KEY, ban_key(ban)],
            args=[
                ban.id,
                JSON_ENCODER.encode(ban),
                "" if ban.until is None else str(ban.until),
                ban.user_id,
            ],
        )
        return ban if held is None else BAN_DECODER.decode(_bytes(held))

    async def bans(self) -> list[Ban]:
        raw = await self._client.hgetall(BANS_KEY)
        now = time.time()
        bans = [BAN_DECODER.decode(_bytes(v)) for v in raw.values()]
        expired = [b.id for b in bans if not b.active(now)]
        if expired:
            await self._client.hdel(BANS_KEY, *expired)
        return sorted((b for b in bans if b.active(now)), key=lambda b: -b.created_at)

    async def remove_ban(self, ban_id: str) -> Ban | None:
        """Lift a ban: its key goes with it, or passes to another ban in force of the same
        user and stage (the one that ends last), in one script: a ban added meanwhile keeps
        its hold (before, a GET then a DEL could delete the key a new ban had just set)."""
        bans = await self.bans()
        lifted = next((b for b in bans if b.id == ban_id), None)
        if lifted is None:
            raw = await self._client.hget(BANS_KEY, ban_id)
            if raw is None:
                return None
            lifted = BAN_DECODER.decode(_bytes(raw))
        key = ban_key(lifted)
        heir = strongest(b for b in bans if b.id != ban_id and ban_key(b) == key)
        removed = await self._remove_ban_script(
            keys=[BANS_KEY, key],
            args=[
                ban_id,
                heir.id if heir is not None else "",
                "" if heir is None or heir.until is None else str(heir.until),
            ],
        )
        return None if removed is None else BAN_DECODER.decode(_bytes(removed))

    async def get_ban(self, ban_id: str) -> Ban | None:
        raw = await self._client.hget(BANS_KEY, ban_id)
        return None if raw is None else BAN_DECODER.decode(_bytes(raw))


# --------------------------------------------------------------------------- memory


@dataclass
class _Entry:
    record: MappingRecord
    expires_at: float
    disconnect: Disconnect | None = None
    events: dict[str, StageEvent] = field(default_factory=dict)
    history: list[CapabilityChange] = field(default_factory=list)
    override: CapabilityOverride | None = None
    version: int = 0


class MemoryMappingStore:
    """The in-process twin: no Redis configured (development, a single replica)."""

    def __init__(self, *, retention_seconds: int, max_records: int = 1_000_000) -> None:
        self._retention = retention_seconds
        self._max_records = max_records
        self._entries: dict[str, _Entry] = {}
        self._bans: dict[str, Ban] = {}

    def _live(self, participant_id: str) -> _Entry | None:
        entry = self._entries.get(participant_id)
        if entry is not None and entry.expires_at <= time.time():
            del self._entries[participant_id]
            return None
        return entry

    def _evict(self) -> None:
        now = time.time()
        self._entries = {k: v for k, v in self._entries.items() if v.expires_at > now}
        while len(self._entries) >= self._max_records:
            # Bounded memory: the oldest record goes first (dicts keep insertion order).
            self._entries.pop(next(iter(self._entries)))

    async def record(self, record: MappingRecord) -> None:
        if self._live(record.participant_id) is not None:
            return  # kept, as Redis's NX keeps it: see `RECORD_WRITE_LUA`
        if len(self._entries) >= self._max_records:
            self._evict()
        self._entries[record.participant_id] = _Entry(
            record=record, expires_at=record.expires_at + self._retention
        )

    @staticmethod
    def _view(entry: _Entry) -> ParticipantView:
        events = sorted(entry.events.values(), key=lambda e: (e.at, e.id))
        history = tuple(sorted(entry.history, key=change_order))
        return ParticipantView(
            entry.record, entry.disconnect, tuple(events), history, entry.override, entry.version
        )

    async def get(self, participant_id: str) -> ParticipantView | None:
        entry = self._live(participant_id)
        return None if entry is None else self._view(entry)

    def _page(
        self, entries: Iterable[_Entry], limit: int, cursor: str | None, low: str | None
    ) -> Page:
        members = sorted(
            ((index_member(e.record), e) for e in entries if e.expires_at > time.time()),
            key=lambda pair: pair[0],
            reverse=True,
        )
        if cursor is not None:
            members = [m for m in members if m[0] < cursor]
        if low is not None:
            members = [m for m in members if m[0] >= low]
        chosen = members[:limit]
        next_cursor = chosen[-1][0] if len(members) > limit and chosen else None
        return Page(tuple(self._view(e) for _, e in chosen), next_cursor)

    async def by_user(
        self, user_id: str, *, issuer: str | None, limit: int, cursor: str | None
    ) -> Page:
        mine = (
            e
            for e in self._entries.values()
            if (
                e.record.app_user_id == user_id
                if issuer == ANY_ISSUER
                else e.record.belongs_to(issuer, user_id)
            )
        )
        return self._page(mine, limit, cursor, None)

    async def by_stage(
        self, stage_arn: str, *, since: int | None, limit: int, cursor: str | None
    ) -> Page:
        here = (e for e in self._entries.values() if e.record.stage_arn == stage_arn)
        low = None if since is None else f"{since * 1000:0{_ID_WIDTH}d}"
        return self._page(here, limit, cursor, low)

    async def mark_disconnected(self, participant_id: str, disconnect: Disconnect) -> bool:
        entry = self._live(participant_id)
        if entry is None:
            return False
        entry.disconnect = disconnect
        return True

    async def add_event(self, participant_id: str, event: StageEvent) -> bool:
        entry = self._live(participant_id)
        if entry is None or event.id in entry.events:
            return False
        entry.events[event.id] = event
        return True

    async def exchange(
        self,
        record: MappingRecord,
        change: CapabilityChange,
        *,
        version: int,
        override: CapabilityOverride | None = None,
    ) -> ChangeResult:
        # No await from the check to the write: atomic within the event loop.
        entry = self._live(record.participant_id)
        if entry is None:
            return ChangeResult.GONE
        if entry.disconnect is not None:
            return ChangeResult.DISCONNECTED
        if entry.version != version:
            return ChangeResult.CONFLICT
        entry.record = record
        entry.expires_at = record.expires_at + self._retention
        entry.version = version + 1
        entry.history.append(msgspec.structs.replace(change, version=entry.version))
        if override is not None:
            entry.override = override
        return ChangeResult.WRITTEN

    async def add_ban(self, ban: Ban) -> Ban:
        now = time.time()
        key = ban_key(ban)
        # The latest ban stored under the same key is the one in force there (as in Redis).
        held = None
        for stored in self._bans.values():
            if stored.active(now) and ban_key(stored) == key:
                held = stored
        if held is not None and held.until == ban.until and held.user_id == ban.user_id:
            return held
        self._bans[ban.id] = ban
        return ban

    async def bans(self) -> list[Ban]:
        now = time.time()
        self._bans = {k: b for k, b in self._bans.items() if b.active(now)}
        return sorted(self._bans.values(), key=lambda b: -b.created_at)

    async def remove_ban(self, ban_id: str) -> Ban | None:
        return self._bans.pop(ban_id, None)

    async def get_ban(self, ban_id: str) -> Ban | None:
        return self._bans.get(ban_id)

    def banned(self, issuer: str | None, user_id: str, stage_arn: str) -> Ban | None:
        """For the memory admission gate: the ban refusing this user here, if any."""
        now = time.time()
        return next(
            (b for b in self._bans.values() if b.refuses(issuer, user_id, stage_arn, now)), None
        )


def live_records(views: Sequence[ParticipantView], now: float) -> list[MappingRecord]:
    """Records whose token may still be in use: unexpired and not disconnected."""
    return [v.record for v in views if v.record.expires_at > now and v.disconnect is None]

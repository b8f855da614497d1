"""The participant-ID mapping log: which app user got which participant, looked up later.

One `MappingRecord` per token handed out, in both modes, written before the token
is returned (the admission gate writes it in the same Redis round trip as the rate
limits in local mode). IVS shows moderators and webhooks only a participant id;
this record is how an operator gets from it to the app user, and acts on it.

Redis layout (every key under the `{ts}` hash tag, see `ratelimit.HASH_TAG`):

- `ts:{ts}:p:<participantId>`: the record (compact msgpack), expiring at the
  token's expiry plus the retention; `ts:{ts}:x:<participantId>`, only when there
  is any: a hash with `d` the disconnect (who, when, why) and `e:<eventId>` each IVS
  event, with the record's expiry.
- `ts:{ts}:u:<user hash>` and `ts:{ts}:s:<stage ARN>`: indexes, sorted sets whose
  members `<issuedAt ms, 13 digits>:<participantId>` sort by time lexically, so
  pages are exact (no ties) and old entries are trimmed by range.
- `ts:{ts}:bans` (hash of bans by id) and `ts:{ts}:ban:u:<user hash>` /
  `ts:{ts}:ban:us:<user hash>:<stage ARN>` (the ban id, expiring with the ban), which
  the admission gate checks.

The memory twin keeps the same records in dicts and passes the same contract tests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from token_service.infra.lane import RedisLane, script_call
from token_service.infra.redis import RedisClient
from token_service.ratelimit import HASH_TAG

#: Longest lifetime a participant token can have (14 days): index entries older than
#: the retention plus this can no longer point at a live record.
MAX_TOKEN_SECONDS = 14 * 24 * 3600
_ID_WIDTH = 13  # milliseconds since 1970 fit in 13 digits until the year 2286


class MappingRecord(msgspec.Struct, kw_only=True):
    """Everything about one issued token except the token itself."""

    participant_id: str
    app_user_id: str
    token_user_id: str
    issuer: str | None = None
    stage_arn: str
    capabilities: list[str]
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    #: Unix seconds.
    issued_at: int
    expires_at: int
    signer: str
    key_arn: str | None = None
    request_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


class Disconnect(msgspec.Struct, kw_only=True):
    at: int
    by: str
    reason: str


class StageEvent(msgspec.Struct, kw_only=True):
    """One IVS "Stage Update" event attached to a participant."""

    id: str
    name: str
    at: str
    session_id: str | None = None


class CapabilityChange(msgspec.Struct, kw_only=True):
    """One token exchange (or admin change) of a participant: the capabilities from then on.

    Kept beside the record (side key field `c:<at ms>:<nonce>`), so the record itself
    and the one-round-trip issuance script stay as they were.
    """

    at: int
    capabilities: list[str]
    #: "exchange" (the participant's own app) or "admin:<admin id>".
    by: str
    expires_at: int


class CapabilityOverride(msgspec.Struct, kw_only=True):
    """An admin's grant (True) or revoke (False) of PUBLISH, applied at the next exchange."""

    publish: bool
    at: int
    by: str


@dataclass(frozen=True)
class ParticipantView:
    record: MappingRecord
    disconnect: Disconnect | None = None
    events: tuple[StageEvent, ...] = ()
    #: Exchanges and admin changes, oldest first (see `CapabilityChange`).
    history: tuple[CapabilityChange, ...] = ()
    override: CapabilityOverride | None = None


@dataclass(frozen=True)
class Page:
    items: tuple[ParticipantView, ...]
    #: Pass back to get the next (older) page; None when this was the last.
    next_cursor: str | None


class Ban(msgspec.Struct, kw_only=True):
    id: str
    user_id: str
    stage_arn: str | None = None
    #: Unix seconds; None: until lifted.
    until: int | None = None
    reason: str
    created_at: int
    created_by: str

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def refuses(self, user_id: str, stage_arn: str, now: float) -> bool:
        """Whether this ban refuses `user_id` a token on `stage_arn` at `now`."""
        return (
            self.user_id == user_id
            and self.active(now)
            and (self.stage_arn is None or self.stage_arn == stage_arn)
        )


_encode = msgspec.json.Encoder()


class _Stored(msgspec.Struct, array_like=True):
    """A record as stored in Redis: positional msgpack, redundancy left out.

    About 40% of the JSON form, which matters at ten million records. New fields go
    at the end with defaults, so older stored records still decode.
    """

    pid: str
    uid: str
    #: None when equal to `uid` (the default user-id mode).
    tuid: str | None
    iss: str | None
    stage: str
    #: Bit 1 PUBLISH, bit 2 SUBSCRIBE.
    caps: int
    attrs: dict[str, str]
    iat: int
    exp: int
    signer: str
    #: The key's id when its ARN shares the stage ARN's region and account, else the ARN.
    key: str | None
    req: str | None
    ip: str | None
    ua: str | None


_FORMAT = b"\x01"
_CAPS = (("PUBLISH", 1), ("SUBSCRIBE", 2))
_stored_encoder = msgspec.msgpack.Encoder()
_stored_decoder = msgspec.msgpack.Decoder(_Stored)


def _key_prefix(stage_arn: str) -> str:
    return stage_arn.split(":stage/", 1)[0] + ":public-key/"


def encode_record(record: MappingRecord) -> bytes:
    prefix = _key_prefix(record.stage_arn)
    key = record.key_arn
    if key is not None and key.startswith(prefix):
        key = key[len(prefix) :]
    stored = _Stored(
        pid=record.participant_id,
        uid=record.app_user_id,
        tuid=None if record.token_user_id == record.app_user_id else record.token_user_id,
        iss=record.issuer,
        stage=record.stage_arn,
        caps=sum(bit for name, bit in _CAPS if name in record.capabilities),
        attrs=record.attributes,
        iat=record.issued_at,
        exp=record.expires_at,
        signer=record.signer,
        key=key,
        req=record.request_id,
        ip=record.client_ip,
        ua=record.user_agent,
    )
    return _FORMAT + _stored_encoder.encode(stored)


def decode_record(raw: bytes) -> MappingRecord:
    if not raw.startswith(_FORMAT):
        raise ValueError("unknown mapping record format")
    stored = _stored_decoder.decode(raw[len(_FORMAT) :])
    key = stored.key
    if key is not None and not key.startswith("arn:"):
        key = _key_prefix(stored.stage) + key
    return MappingRecord(
        participant_id=stored.pid,
        app_user_id=stored.uid,
        token_user_id=stored.tuid if stored.tuid is not None else stored.uid,
        issuer=stored.iss,
        stage_arn=stored.stage,
        capabilities=[name for name, bit in _CAPS if stored.caps & bit],
        attributes=stored.attrs,
        issued_at=stored.iat,
        expires_at=stored.exp,
        signer=stored.signer,
        key_arn=key,
        request_id=stored.req,
        client_ip=stored.ip,
        user_agent=stored.ua,
    )


_disconnect_decoder = msgspec.json.Decoder(Disconnect)
_event_decoder = msgspec.json.Decoder(StageEvent)
_ban_decoder = msgspec.json.Decoder(Ban)
_change_decoder = msgspec.json.Decoder(CapabilityChange)
_override_decoder = msgspec.json.Decoder(CapabilityOverride)


def user_hash(user_id: str) -> str:
    """Index and ban keys name users by a hash: no personal data in Redis key names."""
    digest = hashlib.sha256(user_id.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def index_member(record: MappingRecord) -> str:
    return f"{record.issued_at * 1000:0{_ID_WIDTH}d}:{record.participant_id}"


def record_key(participant_id: str) -> str:
    return f"ts:{HASH_TAG}:p:{participant_id}"


def side_key(participant_id: str) -> str:
    return f"ts:{HASH_TAG}:x:{participant_id}"


def user_index_key(user_id: str) -> str:
    return f"ts:{HASH_TAG}:u:{user_hash(user_id)}"


def stage_index_key(stage_arn: str) -> str:
    return f"ts:{HASH_TAG}:s:{stage_arn}"


def ban_keys(user_id: str, stage_arn: str) -> tuple[str, str]:
    """The two ban keys that can refuse this user on this stage: global, and per stage."""
    uh = user_hash(user_id)
    return f"ts:{HASH_TAG}:ban:u:{uh}", f"ts:{HASH_TAG}:ban:us:{uh}:{stage_arn}"


BANS_KEY = f"ts:{HASH_TAG}:bans"


def _bytes(value: bytes | str) -> bytes:
    # The client is built without decode_responses, so these are bytes; typed loosely.
    return value if isinstance(value, bytes) else value.encode()


def _cursor_bound(cursor: str | None) -> str:
    return "+" if cursor is None else "(" + cursor


class MappingStore(Protocol):
    """Reads and the writes that happen outside the admission gate."""

    async def record(self, record: MappingRecord) -> None: ...

    async def get(self, participant_id: str) -> ParticipantView | None: ...

    async def by_user(self, user_id: str, *, limit: int, cursor: str | None) -> Page: ...

    async def by_stage(
        self, stage_arn: str, *, since: int | None, limit: int, cursor: str | None
    ) -> Page: ...

    async def mark_disconnected(self, participant_id: str, disconnect: Disconnect) -> bool: ...

    async def add_event(self, participant_id: str, event: StageEvent) -> bool: ...

    async def add_ban(self, ban: Ban) -> None: ...

    async def bans(self) -> list[Ban]: ...

    async def remove_ban(self, ban_id: str) -> Ban | None: ...

    async def exchange(self, record: MappingRecord, change: CapabilityChange) -> bool:
        """Replace a participant's record (same id) after an exchange and log the change.

        False when the record no longer exists. The indexes keep the first issue.
        """
        ...

    async def set_override(self, participant_id: str, override: CapabilityOverride) -> bool: ...


def new_ban_id() -> str:
    return "ban_" + secrets.token_hex(8)


# --------------------------------------------------------------------------- Redis

# Writes one record and its two index entries. KEYS: record, user index, stage index.
# ARGV: record JSON, index member, record expiry (unix s), index trim bound (member).
# Shared with the admission gate, which runs it after the limits in the same script.
RECORD_WRITE_LUA = """
local function write_record(rk, uk, sk, value, member, expire_at, trim_before)
  redis.call('SET', rk, value, 'EXAT', expire_at)
  for _, ik in ipairs({uk, sk}) do
    redis.call('ZADD', ik, 0, member)
    redis.call('ZREMRANGEBYLEX', ik, '-', '(' .. trim_before)
    redis.call('EXPIREAT', ik, expire_at, 'NX')
    redis.call('EXPIREAT', ik, expire_at, 'GT')
  end
end
"""

_RECORD_SCRIPT = (
    RECORD_WRITE_LUA
    + "write_record(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])\n"
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
    """ARGV for `write_record`: the JSON, index member, expiry and trim bound."""
    trim_ms = (int(time.time()) - retention_seconds - MAX_TOKEN_SECONDS) * 1000
    return [
        encode_record(record),
        index_member(record),
        record.expires_at + retention_seconds,
        f"{max(0, trim_ms):0{_ID_WIDTH}d}",
    ]


def record_write_keys(record: MappingRecord) -> list[str]:
    return [
        record_key(record.participant_id),
        user_index_key(record.app_user_id),
        stage_index_key(record.stage_arn),
    ]


def _view(
    participant_id: str, raw: bytes | None, side: Mapping[bytes, bytes]
) -> ParticipantView | None:
    if raw is None:
        return None
    disconnect = side.get(b"d")
    events = sorted(
        (_event_decoder.decode(v) for k, v in side.items() if k.startswith(b"e:")),
        key=lambda e: (e.at, e.id),
    )
    record = decode_record(raw)
    if record.participant_id != participant_id:
        return None
    history = sorted(
        (_change_decoder.decode(v) for k, v in side.items() if k.startswith(b"c:")),
        key=lambda c: c.at,
    )
    override = side.get(b"o")
    return ParticipantView(
        record=record,
        disconnect=_disconnect_decoder.decode(disconnect) if disconnect else None,
        events=tuple(events),
        history=tuple(history),
        override=_override_decoder.decode(override) if override else None,
    )


# Replaces a record after an exchange and logs the change beside it, only while the
# record exists. KEYS: record, side key. ARGV: record value, expiry (unix s), field,
# change JSON. Returns 1 when written.
_EXCHANGE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', tonumber(ARGV[2]))
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('EXPIREAT', KEYS[2], tonumber(ARGV[2]))
return 1
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

    async def record(self, record: MappingRecord) -> None:
        await self._record_script(
            record_write_keys(record), record_write_args(record, self._retention)
        )

    async def get(self, participant_id: str) -> ParticipantView | None:
        # Disconnects and events are rare: they live beside the record, so the common
        # record is a bare string, the smallest thing Redis stores.
        raw = await self._client.get(record_key(participant_id))
        if raw is None:
            return None
        side = await self._client.hgetall(side_key(participant_id))
        return _view(participant_id, _bytes(raw), {_bytes(k): _bytes(v) for k, v in side.items()})

    async def _page(self, index: str, low: str, limit: int, cursor: str | None) -> Page:
        raw = await self._client.zrevrangebylex(
            index, _cursor_bound(cursor), low, start=0, num=limit + 1
        )
        members = [_bytes(m) for m in raw]
        more = len(members) > limit
        members = members[:limit]
        views: list[ParticipantView] = []
        for member in members:
            participant_id = member.decode().split(":", 1)[1]
            view = await self.get(participant_id)
            if view is not None:  # expired records leave index entries until trimmed
                views.append(view)
        next_cursor = members[-1].decode() if more and members else None
        return Page(items=tuple(views), next_cursor=next_cursor)

    async def by_user(self, user_id: str, *, limit: int, cursor: str | None) -> Page:
        return await self._page(user_index_key(user_id), "-", limit, cursor)

    async def by_stage(
        self, stage_arn: str, *, since: int | None, limit: int, cursor: str | None
    ) -> Page:
        low = "-" if since is None else f"[{since * 1000:0{_ID_WIDTH}d}"
        return await self._page(stage_index_key(stage_arn), low, limit, cursor)

    async def mark_disconnected(self, participant_id: str, disconnect: Disconnect) -> bool:
        written = await self._side_script(
            keys=[record_key(participant_id), side_key(participant_id)],
            args=["d", _encode.encode(disconnect).decode(), "0"],
        )
        return bool(written)

    async def add_event(self, participant_id: str, event: StageEvent) -> bool:
        written = await self._side_script(
            keys=[record_key(participant_id), side_key(participant_id)],
            args=[f"e:{event.id}", _encode.encode(event).decode(), "1"],
        )
        return bool(written)

    async def exchange(self, record: MappingRecord, change: CapabilityChange) -> bool:
        written = await self._exchange_script(
            keys=[record_key(record.participant_id), side_key(record.participant_id)],
            args=[
                encode_record(record),
                record.expires_at + self._retention,
                change_field(change),
                _encode.encode(change).decode(),
            ],
        )
        return bool(written)

    async def set_override(self, participant_id: str, override: CapabilityOverride) -> bool:
        written = await self._side_script(
            keys=[record_key(participant_id), side_key(participant_id)],
            args=["o", _encode.encode(override).decode(), "0"],
        )
        return bool(written)

    async def add_ban(self, ban: Ban) -> None:
        global_key, stage_key = ban_keys(ban.user_id, ban.stage_arn or "")
        key = stage_key if ban.stage_arn else global_key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(BANS_KEY, ban.id, _encode.encode(ban))
            if ban.until is None:
                pipe.set(key, ban.id)
            else:
                pipe.set(key, ban.id, exat=ban.until)
            await pipe.execute()

    async def bans(self) -> list[Ban]:
        raw = await self._client.hgetall(BANS_KEY)
        now = time.time()
        bans = [_ban_decoder.decode(_bytes(v)) for v in raw.values()]
        expired = [b.id for b in bans if not b.active(now)]
        if expired:
            await self._client.hdel(BANS_KEY, *expired)
        return sorted((b for b in bans if b.active(now)), key=lambda b: -b.created_at)

    async def remove_ban(self, ban_id: str) -> Ban | None:
        raw = await self._client.hget(BANS_KEY, ban_id)
        if raw is None:
            return None
        ban = _ban_decoder.decode(_bytes(raw))
        global_key, stage_key = ban_keys(ban.user_id, ban.stage_arn or "")
        key = stage_key if ban.stage_arn else global_key
        current = await self._client.get(key)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hdel(BANS_KEY, ban_id)
            if current is not None and _bytes(current).decode() == ban_id:
                pipe.delete(key)
            await pipe.execute()
        return ban


# --------------------------------------------------------------------------- memory


@dataclass
class _Entry:
    record: MappingRecord
    expires_at: float
    disconnect: Disconnect | None = None
    events: dict[str, StageEvent] = field(default_factory=dict)
    history: list[CapabilityChange] = field(default_factory=list)
    override: CapabilityOverride | None = None


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
        if len(self._entries) >= self._max_records:
            self._evict()
        self._entries[record.participant_id] = _Entry(
            record=record, expires_at=record.expires_at + self._retention
        )

    @staticmethod
    def _view(entry: _Entry) -> ParticipantView:
        events = sorted(entry.events.values(), key=lambda e: (e.at, e.id))
        history = tuple(sorted(entry.history, key=lambda c: c.at))
        return ParticipantView(
            entry.record, entry.disconnect, tuple(events), history, entry.override
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

    async def by_user(self, user_id: str, *, limit: int, cursor: str | None) -> Page:
        mine = (e for e in self._entries.values() if e.record.app_user_id == user_id)
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

    async def exchange(self, record: MappingRecord, change: CapabilityChange) -> bool:
        entry = self._live(record.participant_id)
        if entry is None:
            return False
        entry.record = record
        entry.expires_at = record.expires_at + self._retention
        entry.history.append(change)
        return True

    async def set_override(self, participant_id: str, override: CapabilityOverride) -> bool:
        entry = self._live(participant_id)
        if entry is None:
            return False
        entry.override = override
        return True

    async def add_ban(self, ban: Ban) -> None:
        self._bans[ban.id] = ban

    async def bans(self) -> list[Ban]:
        now = time.time()
        self._bans = {k: b for k, b in self._bans.items() if b.active(now)}
        return sorted(self._bans.values(), key=lambda b: -b.created_at)

    async def remove_ban(self, ban_id: str) -> Ban | None:
        return self._bans.pop(ban_id, None)

    def banned(self, user_id: str, stage_arn: str) -> Ban | None:
        """For the memory admission gate: the ban refusing this user here, if any."""
        now = time.time()
        return next((b for b in self._bans.values() if b.refuses(user_id, stage_arn, now)), None)


def live_records(views: Sequence[ParticipantView], now: float) -> list[MappingRecord]:
    """Records whose token may still be in use: unexpired and not disconnected."""
    return [v.record for v in views if v.record.expires_at > now and v.disconnect is None]

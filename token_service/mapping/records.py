"""Mapping records: what is kept of each token handed out, its compact codec, and the Redis
key layout of the mapping log (every key under the `{ts}` hash tag, `infra.redis.HASH_TAG`).

An app user is (issuer, user id): the same `sub` from two issuers is two users, with an
index and bans of their own. `<user key>` below is `domain.user_key(issuer, user id)`,
`<user hash>` a hash of the user id alone; both keep personal data out of key names.

- `ts:{ts}:p:<participantId>`: the record (compact msgpack), expiring at the
  token's expiry plus the retention; `ts:{ts}:x:<participantId>`, only when there
  is any: a hash with `d` the disconnect (who, when, why) and `e:<eventId>` each IVS
  event, `c:<at ms>:<nonce>` each capability change, `o` an admin's PUBLISH override
  and `v` the participant's version (the number of changes written; none: 0), with the
  record's expiry.
- `ts:{ts}:ui:<user key>` and `ts:{ts}:s:<stage ARN>`: indexes, sorted sets whose
  members `<issuedAt ms, 13 digits>:<participantId>` sort by time lexically, so
  pages are exact (no ties) and old entries are trimmed by range.
- `ts:{ts}:uk:<user hash>`: the set of `<user key>`s seen with that user id, for a lookup
  of the user id from every issuer; it expires with the newest of their records.
- `ts:{ts}:bans` (hash of bans by id); the ban id, expiring with the ban, under
  `ts:{ts}:ban:ui:<user key>` / `ts:{ts}:ban:uis:<user key>:<stage ARN>` for a ban of one
  (issuer, user id), and `ts:{ts}:ban:u:<user hash>` / `ts:{ts}:ban:us:<user hash>:<stage
  ARN>` for a ban of the user id from every issuer; the admission gate checks all four.
- `ts:{ts}:dq*` and `ts:{ts}:bd:<ban id>`: a ban's disconnects still to make, and its tally
  (laid out in `mapping.disconnects`).

Up to 0.1.0 the user index was `ts:{ts}:u:<user hash>`, by user id alone:
`mapping.migration` moves it (`token-service participants migrate`). Bans of that time carry
no issuer and read as bans from every issuer, under the keys they always had.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass

import msgspec

from token_service.domain import user_key
from token_service.infra.redis import HASH_TAG

#: A ban's or a lookup's issuer meaning "the user id from every issuer".
ANY_ISSUER = "*"
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

    def belongs_to(self, issuer: str | None, user_id: str) -> bool:
        """Whether the app user (issuer, user_id) got this participant; an empty issuer is
        none, as in `domain.user_key`."""
        return self.app_user_id == user_id and (self.issuer or None) == (issuer or None)


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
    #: The participant's version this change made (1 for the first); 0 in changes written
    #: before versions were kept, which all come before the versioned ones.
    version: int = 0


def change_order(change: CapabilityChange) -> tuple[int, int]:
    """History order: by version, unversioned (older) changes first by time."""
    return (change.version, change.at)


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
    #: How many changes (exchanges, admin PUBLISH changes) were written: a change is
    #: written only over the version it was decided on (compare-and-set). 0 for a
    #: participant never changed, or changed only before versions were kept.
    version: int = 0


@dataclass(frozen=True)
class Page:
    items: tuple[ParticipantView, ...]
    #: Pass back to get the next (older) page; None when this was the last.
    next_cursor: str | None


class Ban(msgspec.Struct, kw_only=True):
    id: str
    user_id: str
    #: Whose `user_id`: an issuer, None for tokens without one, or `ANY_ISSUER` (every
    #: issuer; also what a ban stored before bans had an issuer means).
    issuer: str | None = ANY_ISSUER
    stage_arn: str | None = None
    #: Unix seconds; None: until lifted.
    until: int | None = None
    reason: str
    created_at: int
    created_by: str

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def names(self, issuer: str | None, user_id: str) -> bool:
        """Whether this ban is about the app user (issuer, user_id)."""
        return self.user_id == user_id and (
            self.issuer == ANY_ISSUER or (self.issuer or None) == (issuer or None)
        )

    def refuses(self, issuer: str | None, user_id: str, stage_arn: str, now: float) -> bool:
        """Whether this ban refuses (issuer, user_id) a token on `stage_arn` at `now`."""
        return (
            self.names(issuer, user_id)
            and self.active(now)
            and (self.stage_arn is None or self.stage_arn == stage_arn)
        )


JSON_ENCODER = msgspec.json.Encoder()


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


DISCONNECT_DECODER = msgspec.json.Decoder(Disconnect)
EVENT_DECODER = msgspec.json.Decoder(StageEvent)
BAN_DECODER = msgspec.json.Decoder(Ban)
CHANGE_DECODER = msgspec.json.Decoder(CapabilityChange)
OVERRIDE_DECODER = msgspec.json.Decoder(CapabilityOverride)


# Remembered, as `user_key`: one token request needs it twice (its bans, its record's
# user-keys set), and OpenSSL's SHA-256 costs more from a cold cache than in a loop.
@functools.lru_cache(maxsize=8192)
def user_hash(user_id: str) -> str:
    """A user id alone, from every issuer, as it names keys (no personal data in them)."""
    digest = hashlib.sha256(user_id.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def index_member(record: MappingRecord) -> str:
    return f"{record.issued_at * 1000:0{_ID_WIDTH}d}:{record.participant_id}"


def record_key(participant_id: str) -> str:
    return f"ts:{HASH_TAG}:p:{participant_id}"


def side_key(participant_id: str) -> str:
    return f"ts:{HASH_TAG}:x:{participant_id}"


def user_index_key(issuer: str | None, user_id: str) -> str:
    """The index of one app user's participants."""
    return user_index_key_of(user_key(issuer, user_id))


def user_index_key_of(key: str) -> str:
    return f"ts:{HASH_TAG}:ui:{key}"


def user_keys_key(user_id: str) -> str:
    """The set of the `user_key`s seen with this user id (one per issuer)."""
    return f"ts:{HASH_TAG}:uk:{user_hash(user_id)}"


#: The user index before it named the issuer (see the module's docstring): what
#: `mapping.migration` moves, and nothing writes any more.
LEGACY_USER_INDEX_PATTERN = f"ts:{HASH_TAG}:u:*"


def legacy_user_index_key(user_id: str) -> str:
    return f"ts:{HASH_TAG}:u:{user_hash(user_id)}"


def stage_index_key(stage_arn: str) -> str:
    return f"ts:{HASH_TAG}:s:{stage_arn}"


def ban_keys(issuer: str | None, user_id: str, stage_arn: str) -> tuple[str, str, str, str]:
    """The four ban keys that can refuse (issuer, user_id) on this stage: every issuer's user
    id everywhere and on the stage, then this user's own everywhere and on the stage."""
    uh = user_hash(user_id)
    uk = user_key(issuer, user_id)
    return (
        f"ts:{HASH_TAG}:ban:u:{uh}",
        f"ts:{HASH_TAG}:ban:us:{uh}:{stage_arn}",
        f"ts:{HASH_TAG}:ban:ui:{uk}",
        f"ts:{HASH_TAG}:ban:uis:{uk}:{stage_arn}",
    )


def ban_key(ban: Ban) -> str:
    """The one key holding this ban's id while it is in force."""
    everywhere, on_stage, own_everywhere, own_on_stage = ban_keys(
        None if ban.issuer == ANY_ISSUER else ban.issuer, ban.user_id, ban.stage_arn or ""
    )
    if ban.issuer == ANY_ISSUER:
        return on_stage if ban.stage_arn else everywhere
    return own_on_stage if ban.stage_arn else own_everywhere


BANS_KEY = f"ts:{HASH_TAG}:bans"

"""Value types shared by the request path: who asks, what they ask, what they get.

Plain frozen dataclasses with no behaviour beyond validation-free construction, so
every domain module can depend on them without depending on each other.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*(?:;\s*burst\s*=\s*(\d+)\s*)?$")
_PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Rate:
    """A limit such as `10/minute` or `10/minute;burst=3`: `count` per `period_seconds`.

    `burst` is how many may come at once (default: `count`, the whole period's share).
    """

    count: int
    period_seconds: int
    burst: int | None = None

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE_RE.match(text)
        if match is None:
            raise ValueError(
                "expected N/second, N/minute, N/hour or N/day with an optional ;burst=B, "
                "e.g. 10/minute or 10/minute;burst=3"
            )
        count = int(match.group(1))
        if count < 1:
            raise ValueError("the count must be at least 1")
        burst = int(match.group(3)) if match.group(3) else None
        if burst is not None and burst < 1:
            raise ValueError("the burst must be at least 1")
        return cls(count=count, period_seconds=_PERIOD_SECONDS[match.group(2)], burst=burst)

    def __str__(self) -> str:
        unit = {v: k for k, v in _PERIOD_SECONDS.items()}[self.period_seconds]
        text = f"{self.count}/{unit}"
        return text if self.burst is None else f"{text};burst={self.burst}"


#: A stage ARN as the service accepts it: `arn:aws:ivs:<region>:<12-digit account>:stage/<id>`.
#: Real stage ids are 12 alphanumerics; botocore's model allows [a-zA-Z0-9-] (the ARN at most
#: 128 characters, which a 64-character id keeps within). The one stage-ARN pattern: requests,
#: policy files and the OpenAPI document all use it.
STAGE_ARN_RE = re.compile(
    r"^arn:aws:ivs:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):stage/(?P<id>[a-zA-Z0-9-]{1,64})$"
)
STAGE_ARN_FORMAT = "arn:aws:ivs:<region>:<12-digit account>:stage/<stage id>"


@dataclass(frozen=True)
class StageArn:
    """A stage ARN and its parts."""

    arn: str
    region: str
    account: str
    stage_id: str

    @classmethod
    def parse(cls, text: str) -> StageArn:
        """The parts of `text`; ValueError naming the expected shape when it is no stage ARN."""
        match = STAGE_ARN_RE.fullmatch(text)
        if match is None:
            raise ValueError(f"expected {STAGE_ARN_FORMAT}")
        return cls(text, match["region"], match["account"], match["id"])


def is_stage_arn(text: str) -> bool:
    return STAGE_ARN_RE.fullmatch(text) is not None


class Capability(enum.StrEnum):
    """IVS participant capabilities, spelled as CreateParticipantToken spells them."""

    PUBLISH = "PUBLISH"
    SUBSCRIBE = "SUBSCRIBE"


class Signer(enum.StrEnum):
    LOCAL = "local"
    IVS = "ivs"


@dataclass(frozen=True)
class AppUser:
    """An authenticated app user, as established from their app's JWT."""

    user_id: str
    roles: frozenset[str]
    #: The `iss` of the app JWT (None for shared-secret tokens without one, or with an empty
    #: one). A user is (issuer, user_id): the same `user_id` from two issuers is two users.
    issuer: str | None
    #: Every verified claim, for policies that copy claims into attributes.
    claims: Mapping[str, Any] = field(default_factory=dict)


# Remembered: one token request needs it four times (its limit, bans, record, index).
@functools.lru_cache(maxsize=8192)
def user_key(issuer: str | None, user_id: str) -> str:
    """One app user, (issuer, user id), as a short fixed-size key: no personal data in Redis
    key names, and the same `sub` from two issuers is two keys.

    `issuer NUL user id` is unambiguous because a user id never holds a NUL (control
    characters are refused in the token's claim and in the admin API's input); no issuer
    and an empty one are the same user (see `auth._common.build_user`).
    """
    digest = hashlib.sha256(f"{issuer or ''}\0{user_id}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenRequest:
    """What the client asked for. `None` means "whatever the policy gives by default"."""

    stage_arn: str
    capabilities: frozenset[Capability] | None = None
    duration_minutes: int | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Grant:
    """What the policy decided this user gets: the only input an issuer trusts."""

    stage_arn: str
    #: The `user_id` put in the token (the app user id, or its pseudonym).
    token_user_id: str
    capabilities: frozenset[Capability]
    duration_minutes: int
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class IssuedToken:
    """A participant token and the facts about it that the caller and the audit log need."""

    token: str
    participant_id: str
    user_id: str
    stage_arn: str
    capabilities: frozenset[Capability]
    attributes: Mapping[str, str]
    duration_minutes: int
    issued_at: datetime
    expires_at: datetime
    signer: Signer
    key_arn: str | None


def iso_utc(moment: datetime | float) -> str:
    """A moment (a datetime, or Unix seconds) as the API writes times: `2026-11-28T21:00:00Z`."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    m = moment.astimezone(UTC)
    if m.year < 1000:  # strftime's %Y does not pad them; nothing the service writes
        return m.strftime("%Y-%m-%dT%H:%M:%SZ")
    # As strftime writes it, without its locale and time-zone machinery (every token's
    # answer carries one; from a cold cache strftime is several µs here).
    return f"{m.year}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def claim_at(claims: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """The claim called `name`; only when there is none and the name is dotted, the value at
    that path (`realm_access.roles`); else `default`.

    The literal name wins, so claims whose names contain dots (URIs, as Auth0 writes custom
    claims) still work. The authenticator reads roles and user ids with it, and the policy
    reads the claims it copies into attributes, so both agree on what a claim name means.
    """
    if name in claims:
        return claims[name]
    if "." not in name:
        return default
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node

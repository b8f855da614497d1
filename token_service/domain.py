"""Value types shared by the request path: who asks, what they ask, what they get.

Plain frozen dataclasses with no behaviour beyond validation-free construction, so
every domain module can depend on them without depending on each other.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
    #: The `iss` of the app JWT (None for shared-secret tokens without one).
    issuer: str | None
    #: Every verified claim, for policies that copy claims into attributes.
    claims: Mapping[str, Any] = field(default_factory=dict)


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

"""Issuers: turn a policy `Grant` into a participant token, locally (ES384) or through IVS.

Both implement `Issuer`. The local issuer signs the JWT that IVS documents for
self-signed tokens (see docs/ivs-facts.md), with the ring's active key and
the stage endpoints from the stage directory. The IVS issuer calls
CreateParticipantToken (paced by the IVS budget inside `Ivs`); its token is opaque.

Two compositions choose between them per request: `AutoIssuer` (local while the
ring has an active key, IVS otherwise) and `IvsWithLocalFallback` (IVS, and local
signing when IVS's capacity is exhausted and a key exists).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from token_service.domain import Capability, Grant, IssuedToken, Signer
from token_service.errors import ServiceUnavailable
from token_service.ivs.budget import BudgetExhausted
from token_service.ivs.client import Ivs, IvsOverloaded, IvsThrottled, StageInfo
from token_service.tokens.compact_jws import encode_es384

# Only [A-Za-z0-9]: the current model also allows `_` and `-`, older ones not `_`.
_JTI_ALPHABET = string.ascii_letters + string.digits
#: 22 characters of 62 symbols: about 131 bits, far beyond any chance of collision.
JTI_LENGTH = 22
TOKEN_VERSION = "1.0"  # noqa: S105 - the claim `version`, not a password


# Random bytes map to the alphabet by `b % 62`, keeping only bytes below 248 (= 4 * 62)
# so every symbol is equally likely (rejection sampling, done by bytes.translate in C).
_ACCEPTED = 4 * len(_JTI_ALPHABET)
_TO_SYMBOL = bytes(ord(_JTI_ALPHABET[b % len(_JTI_ALPHABET)]) for b in range(256))
_REJECTED = bytes(range(_ACCEPTED, 256))
#: Enough bytes that one draw almost always suffices (22 needed, ~31 kept on average).
_DRAW = 32


def new_participant_id() -> str:
    """22 uniformly random symbols of [A-Za-z0-9], from one OS random read per id
    (not one per character: `secrets.choice` per symbol was 22 reads per token)."""
    symbols = b""
    while len(symbols) < JTI_LENGTH:
        symbols += secrets.token_bytes(_DRAW).translate(_TO_SYMBOL, _REJECTED)
    return symbols[:JTI_LENGTH].decode("ascii")


class Issuer(Protocol):
    @property
    def signer(self) -> Signer:
        """Who signs the next token (as far as known before issuing it)."""
        ...

    async def prepare(self, grant: Grant, *, admitted: bool = False) -> PreparedToken | None:
        """A local token ready to record then sign, or None when only `issue` can tell.

        Before the request is admitted (`admitted=False`) nothing may cost an IVS call:
        None then also when the stage's endpoints are not cached. Once admitted, the
        stage may be looked up (GetStage, under the lookup budget).
        """
        ...

    async def issue(self, grant: Grant) -> IssuedToken: ...


class StageResolver(Protocol):
    async def cached(self, arn: str) -> StageInfo | None:
        """The stage as cached (no IVS call), or None."""
        ...

    async def resolve(self, arn: str) -> StageInfo:
        """The stage, from the cache or from GetStage."""
        ...


class ServedStages(Protocol):
    def check_served(self, arn: str) -> object: ...


class ActiveKeySource(Protocol):
    def active(self) -> Any: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def self_signed_claims(
    *,
    stage: StageInfo,
    grant: Grant,
    participant_id: str,
    issued_at: int,
    expires_at: int,
) -> dict[str, Any]:
    """The claims IVS requires of a self-signed token, exactly as documented."""
    claims: dict[str, Any] = {
        "exp": expires_at,
        "iat": issued_at,
        "jti": participant_id,
        "resource": stage.arn,
        "topic": stage.stage_id,
        "events_url": stage.events_url,
        "whip_url": stage.whip_url,
        "capabilities": {
            "allow_publish": Capability.PUBLISH in grant.capabilities,
            "allow_subscribe": Capability.SUBSCRIBE in grant.capabilities,
        },
        # A string: the web client breaks on a numeric version.
        "version": TOKEN_VERSION,
    }
    if grant.token_user_id:
        claims["user_id"] = grant.token_user_id
    if grant.attributes:
        claims["attributes"] = dict(grant.attributes)
    return claims


def active_key(keys: ActiveKeySource) -> Any:
    """The key to sign with now, or 503: no token can be signed until one is rotated in."""
    key = keys.active()
    if key is None:
        raise ServiceUnavailable(
            "no active signing key: run `token-service keys rotate`", retry_after=5
        )
    return key


def prepare_token(
    *, stage: StageInfo, grant: Grant, key: Any, participant_id: str, now: datetime
) -> PreparedToken:
    """A self-signed token for `participant_id` on `stage`, issued `now`, not yet signed.

    Shared by first issue (a new participant id) and exchange (the participant's own).
    """
    issued = now.replace(microsecond=0)
    expires = issued + timedelta(minutes=grant.duration_minutes)
    claims = self_signed_claims(
        stage=stage,
        grant=grant,
        participant_id=participant_id,
        issued_at=int(issued.timestamp()),
        expires_at=int(expires.timestamp()),
    )
    facts = IssuedToken(
        token="",
        participant_id=participant_id,
        user_id=grant.token_user_id,
        stage_arn=stage.arn,
        capabilities=grant.capabilities,
        attributes=dict(grant.attributes),
        duration_minutes=grant.duration_minutes,
        issued_at=issued,
        expires_at=expires,
        signer=Signer.LOCAL,
        key_arn=key.arn,
    )
    return PreparedToken(facts=facts, claims=claims, private_key=key.private_key)


class LocalIssuer:
    """Signs ES384 participant tokens with the key ring's active key."""

    signer = Signer.LOCAL

    def __init__(
        self,
        keys: ActiveKeySource,
        stages: StageResolver,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._keys = keys
        self._stages = stages
        self._clock = clock

    async def prepare(self, grant: Grant, *, admitted: bool = False) -> PreparedToken | None:
        """Everything but the signature: the caller records it first, then signs.

        Not yet admitted, a stage whose endpoints are not cached gives None: looking it
        up costs a GetStage call, which only an admitted request may spend.
        """
        if not admitted:
            cached = await self._stages.cached(grant.stage_arn)
            return None if cached is None else self._prepare(cached, grant)
        return self._prepare(await self._stages.resolve(grant.stage_arn), grant)

    def _prepare(self, stage: StageInfo, grant: Grant) -> PreparedToken:
        return prepare_token(
            stage=stage,
            grant=grant,
            key=active_key(self._keys),
            participant_id=new_participant_id(),
            # `iat` is the moment of issue, never a time computed at start-up.
            now=self._clock(),
        )

    async def issue(self, grant: Grant) -> IssuedToken:
        return self._prepare(await self._stages.resolve(grant.stage_arn), grant).sign()


@dataclass(frozen=True)
class PreparedToken:
    """A self-signed token decided in full, not yet signed."""

    #: The token's facts (everything but `token`, which is empty until signed).
    facts: IssuedToken
    claims: dict[str, Any]
    private_key: Any = field(repr=False)

    def sign(self) -> IssuedToken:
        # The JWT as PyJWT writes it (compact, ensure_ascii JSON; unpadded base64url; raw
        # R||S), without PyJWT's per-call overhead: see tokens/compact_jws.py.
        token = encode_es384(self.claims, self.private_key, self.facts.key_arn)
        return replace(self.facts, token=token)


class IvsIssuer:
    """Asks IVS for the token with CreateParticipantToken (50 TPS per account and region)."""

    async def prepare(self, grant: Grant, *, admitted: bool = False) -> PreparedToken | None:
        """IVS chooses the participant id: nothing can be prepared before calling it."""
        return None

    signer = Signer.IVS

    def __init__(
        self, ivs: Ivs, stages: ServedStages, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._ivs = ivs
        self._stages = stages
        self._clock = clock

    async def issue(self, grant: Grant) -> IssuedToken:
        self._stages.check_served(grant.stage_arn)
        now = self._clock().replace(microsecond=0)
        capabilities = tuple(sorted(c.value for c in grant.capabilities))
        result = await self._ivs.create_participant_token(
            stage_arn=grant.stage_arn,
            user_id=grant.token_user_id,
            duration_minutes=grant.duration_minutes,
            capabilities=capabilities,
            attributes=grant.attributes,
        )
        expires = result.expires_at or now + timedelta(minutes=grant.duration_minutes)
        return IssuedToken(
            token=result.token,
            participant_id=result.participant_id,
            user_id=result.user_id,
            stage_arn=grant.stage_arn,
            capabilities=frozenset(Capability(c) for c in result.capabilities),
            attributes=dict(result.attributes),
            duration_minutes=result.duration_minutes,
            issued_at=now,
            expires_at=expires.astimezone(UTC),
            signer=Signer.IVS,
            key_arn=None,
        )


#: No CreateParticipantToken can be made now: our budget is spent, IVS throttles, or this
#: process is too busy to send the call in its turn.
CAPACITY_ERRORS = (BudgetExhausted, IvsThrottled, IvsOverloaded)


class AutoIssuer:
    """`TOKEN_SERVICE_MODE=auto`: local signing while an active key exists, IVS otherwise.

    Decided per request, so a key rotated in (or deleted) while serving takes effect
    at once, with no restart.
    """

    def __init__(self, local: Issuer, ivs: Issuer, keys: ActiveKeySource) -> None:
        self._local = local
        self._ivs = ivs
        self._keys = keys

    @property
    def signer(self) -> Signer:
        return Signer.LOCAL if self._keys.active() is not None else Signer.IVS

    async def prepare(self, grant: Grant, *, admitted: bool = False) -> PreparedToken | None:
        if self._keys.active() is not None:
            return await self._local.prepare(grant, admitted=admitted)
        return None

    async def issue(self, grant: Grant) -> IssuedToken:
        if self._keys.active() is not None:
            return await self._local.issue(grant)
        return await self._ivs.issue(grant)


class IvsWithLocalFallback:
    """IVS first; once IVS's capacity is exhausted, local signing if a key is active.

    Without an active key the capacity error (503 with Retry-After) stands. Other
    IVS errors never fall back: a stage that does not exist or an IAM problem must
    not be papered over by a token that would then fail at join.
    """

    signer = Signer.IVS

    def __init__(self, ivs: Issuer, local: Issuer, keys: ActiveKeySource) -> None:
        self._ivs = ivs
        self._local = local
        self._keys = keys

    async def prepare(self, grant: Grant, *, admitted: bool = False) -> PreparedToken | None:
        return None

    async def issue(self, grant: Grant) -> IssuedToken:
        try:
            return await self._ivs.issue(grant)
        except CAPACITY_ERRORS:
            if self._keys.active() is None:
                raise
        return await self._local.issue(grant)

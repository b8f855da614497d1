"""What IVS checks when a participant joins a stage with a token (`POST /_emulator/join`).

Every rule of the self-signed token format (ES384, `kid` an imported and
undeleted key of the stage's region, the signature, the stage and its
endpoints, lifetime, `jti`, `version`, capabilities, user ID and attributes),
applied to self-signed tokens and to the emulator's own CreateParticipantToken
tokens alike. A rejection names its reason in a stable, machine-readable word.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ivs_realtime_emulator import rules
from ivs_realtime_emulator.state import EmulatorState, Stage
from ivs_realtime_emulator.tokens import INTERNAL_KID

#: base64url without padding or whitespace, three parts: what a WebSocket
#: subprotocol (where the web client puts the token) can carry.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_STAGE_ARN = re.compile(r"arn:aws:ivs:([a-z0-9-]+):([0-9]+):stage/([a-zA-Z0-9-]+)")
_KEY_ARN = re.compile(r"arn:aws:ivs:([a-z0-9-]+):([0-9]+):public-key/([a-zA-Z0-9-]+)")
_REQUIRED_CLAIMS = (
    "exp",
    "iat",
    "jti",
    "resource",
    "topic",
    "events_url",
    "whip_url",
    "capabilities",
    "version",
)


class JoinRejected(Exception):
    """The token may not join: `reason` is the stable code, `status` the HTTP answer."""

    def __init__(self, reason: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Joined:
    participant_id: str
    user_id: str | None
    stage_arn: str
    capabilities: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "participantId": self.participant_id,
            "userId": self.user_id,
            "stageArn": self.stage_arn,
            "capabilities": self.capabilities,
        }


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise JoinRejected("malformed_token", f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise JoinRejected("malformed_token", f"the token's {what} is not a JSON object")
    return value


def _split(token: str) -> tuple[dict[str, Any], bytes]:
    """The header and the raw claims bytes, before any trust is placed in them."""
    if _COMPACT_JWS.fullmatch(token) is None:
        raise JoinRejected(
            "malformed_token",
            "a token is three base64url parts without padding, whitespace or newlines",
        )
    header_part, claims_part, _signature = token.split(".")
    try:
        header_raw, claims_raw = _b64decode(header_part), _b64decode(claims_part)
    except (binascii.Error, ValueError):
        raise JoinRejected("malformed_token", "the token is not base64url") from None
    return _json_object(header_raw, "header"), claims_raw


def _verification_key(
    state: EmulatorState, header: dict[str, Any]
) -> tuple[ec.EllipticCurvePublicKey, str | None]:
    """The key that must have signed the token, and the region it binds the stage to."""
    if header.get("alg") != "ES384":
        raise JoinRejected("unsupported_algorithm", f"alg must be ES384, not {header.get('alg')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JoinRejected("unknown_key", "the header has no kid (the public key ARN)")
    if kid == INTERNAL_KID:
        return state.issuer.public_key, None
    found = _KEY_ARN.fullmatch(kid)
    if found is None:
        raise JoinRejected("unknown_key", "kid is not a public key ARN")
    region = found.group(1)
    regional = state.regions.get(region)
    key = regional.public_keys.get(kid) if regional else None
    if key is None:
        if regional is not None and kid in regional.deleted_key_arns:
            raise JoinRejected("key_deleted", f"public key {kid} was deleted")
        raise JoinRejected("unknown_key", f"no public key {kid} is imported")
    public_key = serialization.load_pem_public_key(key.material.encode("utf-8"))
    if not isinstance(public_key, ec.EllipticCurvePublicKey):  # ImportPublicKey ensured it
        raise JoinRejected("unknown_key", f"public key {kid} is not an EC key")
    return public_key, region


def _verify(token: str, key: ec.EllipticCurvePublicKey) -> None:
    try:
        # Signature only: every claim is checked below, by IVS's rules, not PyJWT's.
        jwt.PyJWS().decode_complete(token, key=key, algorithms=["ES384"])
    except jwt.InvalidSignatureError:
        raise JoinRejected("invalid_signature", "the signature does not verify") from None
    except jwt.PyJWTError:
        raise JoinRejected("malformed_token", "the token is not a valid JWS") from None


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise JoinRejected("invalid_claim", f"{name} must be an integer of Unix seconds")
    # mypy 1.20 keeps a narrowed Any as Any; the checks above made it an int.
    return int(value)


def _check_lifetime(claims: dict[str, Any], now: datetime) -> None:
    expires, issued = _int_claim(claims, "exp"), _int_claim(claims, "iat")
    if expires <= now.timestamp():
        raise JoinRejected("expired", "the token has expired (exp)")
    if expires - issued > rules.MAX_TOKEN_LIFETIME_SECONDS:
        raise JoinRejected("lifetime_too_long", "exp is more than 14 days after iat")


def _stage_of(state: EmulatorState, claims: dict[str, Any], key_region: str | None) -> Stage:
    resource = claims["resource"]
    found = _STAGE_ARN.fullmatch(resource) if isinstance(resource, str) else None
    if found is None:
        raise JoinRejected("invalid_claim", "resource must be a stage ARN", 401)
    region = found.group(1)
    if key_region is not None and region != key_region:
        raise JoinRejected(
            "unknown_key", f"the signing key is not imported in the stage's region {region}"
        )
    regional = state.regions.get(region)
    stage = regional.stages.get(resource) if regional else None
    if stage is None:
        raise JoinRejected("stage_not_found", f"stage {resource} does not exist", 404)
    if claims["topic"] != stage.stage_id:
        raise JoinRejected("topic_mismatch", "topic must be the stage ID (end of its ARN)")
    for claim, endpoint in (("events_url", "events"), ("whip_url", "whip")):
        if claims[claim] != stage.endpoints[endpoint]:
            raise JoinRejected(
                "endpoint_mismatch", f"{claim} must equal the stage's endpoints.{endpoint}"
            )
    return stage


def _capabilities(claims: dict[str, Any]) -> list[str]:
    value = claims["capabilities"]
    if not isinstance(value, dict) or not all(
        isinstance(value.get(name), bool) for name in ("allow_publish", "allow_subscribe")
    ):
        raise JoinRejected(
            "invalid_capabilities",
            "capabilities must be an object with boolean allow_publish and allow_subscribe",
        )
    return rules.capability_list(value)


def _user_id(claims: dict[str, Any]) -> str | None:
    value = claims.get("user_id")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > rules.MAX_USER_ID_CHARS:
        raise JoinRejected(
            "invalid_user_id", f"user_id must be a string of at most {rules.MAX_USER_ID_CHARS}"
        )
    return value


def _attributes(claims: dict[str, Any]) -> dict[str, str]:
    value = claims.get("attributes")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise JoinRejected("invalid_attributes", "attributes must map strings to strings")
    if rules.attributes_size(value) > rules.MAX_ATTRIBUTES_BYTES:
        raise JoinRejected(
            "invalid_attributes",
            f"attributes exceed {rules.MAX_ATTRIBUTES_BYTES} bytes (UTF-8 keys plus values)",
        )
    return dict(value)


def check_token(state: EmulatorState, token: str, now: datetime) -> tuple[Stage, dict[str, Any]]:
    """The stage a token may join and its claims, or JoinRejected with the first broken rule."""
    header, claims_raw = _split(token)
    key, key_region = _verification_key(state, header)
    _verify(token, key)
    if not claims_raw.isascii():
        # The web client decodes claims with atob (Latin-1): non-ASCII arrives garbled.
        raise JoinRejected("non_ascii_claims", r"claims JSON must be ASCII (use \uXXXX escapes)")
    claims = _json_object(claims_raw, "claims")
    missing = [name for name in _REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise JoinRejected("missing_claim", f"missing claims: {', '.join(missing)}")
    if claims["version"] != rules.CLAIMS_VERSION or not isinstance(claims["version"], str):
        raise JoinRejected("bad_version", 'version must be the string "1.0"')
    _check_lifetime(claims, now)
    jti = claims["jti"]
    if not isinstance(jti, str) or rules.JTI_PATTERN.fullmatch(jti) is None:
        raise JoinRejected("invalid_jti", "jti must be 1-64 characters of [A-Za-z0-9_-]")
    stage = _stage_of(state, claims, key_region)
    _capabilities(claims)
    _user_id(claims)
    _attributes(claims)
    return stage, claims


def join(state: EmulatorState, token: str, now: datetime) -> Joined:
    """Check `token` and, if it passes, connect its participant to the stage."""
    stage, claims = check_token(state, token, now)
    participant_id: str = claims["jti"]
    regional = state.regions.get(stage.arn.split(":")[3])
    if regional is not None and participant_id in regional.revoked_token_ids:
        raise JoinRejected(
            "token_revoked",
            f"token {participant_id} was revoked (RevokeConnectionToken) and may not connect",
            403,
        )
    if participant_id in stage.disconnected:
        raise JoinRejected(
            "participant_disconnected",
            f"participant {participant_id} was disconnected and may not join again",
            403,
        )
    capabilities = _capabilities(claims)
    participant = stage.connect(
        participant_id=participant_id,
        user_id=_user_id(claims),
        attributes=_attributes(claims),
        capabilities=capabilities,
        now=now,
        seq=state.next_seq(),
    )
    participant.token_expiration = datetime.fromtimestamp(claims["exp"], UTC)
    return Joined(
        participant_id=participant.participant_id,
        user_id=participant.user_id,
        stage_arn=stage.arn,
        capabilities=participant.capabilities,
    )


def parse_join_request(body: bytes) -> str:
    """The token of a `{"token": "..."}` body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise JoinRejected("invalid_request", "the body must be JSON", 400) from None
    if not isinstance(document, dict) or not isinstance(document.get("token"), str):
        raise JoinRejected("invalid_request", 'the body must be {"token": "<token>"}', 400)
    token: str = document["token"]
    return token

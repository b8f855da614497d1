"""Admin routes for the signing key ring: list, rotate, prepare, delete, revoke.

Thin: each handler names the caller for the audit line and calls the one
`KeyAdministration` that `token-service keys ...` uses too.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from token_service.auth import parse_bearer
from token_service.config import Settings
from token_service.http.guards import require_admin
from token_service.http.openapi import problems
from token_service.http.schemas import KeyDeleted, KeyList, KeyView
from token_service.http.services import Services
from token_service.keys import Revocation, SigningKey
from token_service.keys.admin import KeyAdministration


class KeyRevoked(msgspec.Struct, rename="camel", kw_only=True):
    revoked: KeyView
    #: Tokens signed with the revoked key that had not expired: they no longer join.
    invalidated_tokens: int
    #: What `invalidatedTokens` counts.
    invalidated_tokens_meaning: str
    #: The key signing now (None if the revoked key was active and none could replace it).
    active: KeyView | None
    #: Why no key is active after the revocation, when that is the case.
    problem: str | None = None


def key_view(key: SigningKey) -> KeyView:
    meta = key.metadata()
    return KeyView(
        name=key.name,
        arn=key.arn,
        fingerprint=key.fingerprint,
        status=key.status.value,
        created_at=meta["createdAt"],
        activated_at=meta["activatedAt"],
        retired_at=meta["retiredAt"],
        safe_to_delete_at=meta["safeToDeleteAt"],
    )


def revocation_view(result: Revocation) -> KeyRevoked:
    return KeyRevoked(
        revoked=key_view(result.revoked),
        invalidated_tokens=result.invalidated_tokens,
        invalidated_tokens_meaning=result.count_meaning,
        active=key_view(result.active) if result.active else None,
        problem=result.problem,
    )


def admin_actor(presented: str, settings: Settings) -> str:
    """Which configured admin token was used: its position and a short digest, never itself."""
    digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
    position = 0
    for index, token in enumerate(settings.admin_tokens, start=1):
        configured = hashlib.sha256(token.reveal_bytes()).digest()
        if hmac.compare_digest(digest, configured):
            position = index
    # Eight hex digits tell tokens apart in the audit log without helping to guess one.
    return f"admin-token#{position}:{digest.hex()[:8]}"


def _actor(request: Request[Any, Any, Any]) -> str:
    settings: Settings = request.app.state["settings"]
    return admin_actor(parse_bearer(request.headers.get("authorization")), settings)


class AdminKeysController(Controller):
    path = "/admin/keys"
    guards = [require_admin]  # noqa: RUF012 - Litestar reads this class attribute
    tags = ["admin"]  # noqa: RUF012 - Litestar reads this class attribute
    security = [{"adminToken": []}]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/", summary="Every signing key with its status", responses=problems(401))
    async def list_keys(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services]
    ) -> KeyList:
        keys = await KeyAdministration(services.key_ring).list(_actor(request))
        return KeyList(keys=[key_view(k) for k in keys])

    @post(
        "/rotate",
        status_code=201,
        summary="Make a new key active (a prepared `next` key, or a new import); the old retires",
        description=(
            "With three keys in IVS, the oldest retiring key is deleted first when it is safe; "
            "otherwise 409 says when it will be, or how to force it."
        ),
        responses=problems(401, 409, 502, 503),
    )
    async def rotate(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services]
    ) -> KeyView:
        rotation = await KeyAdministration(services.key_ring).rotate(_actor(request))
        return key_view(rotation.active)

    @post(
        "/prepare",
        status_code=201,
        summary="Import the next key ahead of time (status `next`); rotate promotes it",
        responses=problems(401, 409, 502, 503),
    )
    async def prepare(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services]
    ) -> KeyView:
        key = await KeyAdministration(services.key_ring).prepare(_actor(request))
        return key_view(key)

    @delete(
        "/{name:str}",
        status_code=200,
        summary="DeletePublicKey and forget the private key",
        responses=problems(400, 401, 404, 409, 502, 503),
    )
    async def delete_key(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        name: FromPath[str],
        force: Annotated[
            bool,
            QueryParameter(description="delete even the active key or one with unexpired tokens"),
        ] = False,
    ) -> KeyDeleted:
        result = await KeyAdministration(services.key_ring).delete(
            _actor(request), name, force=force
        )
        return KeyDeleted(deleted=key_view(result.key), forced=result.forced)

    @post(
        "/{name:str}/revoke",
        status_code=200,
        summary="A compromised key: DeletePublicKey at once; a new key signs if it was active",
        description=(
            "Every unused token signed with the key stops joining at once; the response "
            "says how many tokens that was (and what the count covers)."
        ),
        responses=problems(400, 401, 404, 409, 502, 503),
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        name: FromPath[str],
    ) -> KeyRevoked:
        result = await KeyAdministration(services.key_ring).revoke(_actor(request), name)
        return revocation_view(result)

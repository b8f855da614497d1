"""Admin routes for the signing key ring: list, rotate, prepare, delete, revoke.

Thin: each handler names the caller for the audit line and calls the one
`KeyAdministration` that `token-service keys ...` uses too.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from token_service.http.guards import ADMIN_ACTOR_KEY, require_admin
from token_service.http.openapi import problems
from token_service.http.schemas import KeyDeleted, KeyList
from token_service.http.services import Services
from token_service.keys.admin import KeyAdministration
from token_service.keys.views import KeyRevoked, KeyView, key_view, revocation_view


def _actor(request: Request[Any, Any, Any]) -> str:
    actor: str = request.state[ADMIN_ACTOR_KEY]
    return actor


class AdminKeysController(Controller):
    path = "/admin/keys"
    guards = [require_admin]  # noqa: RUF012 - Litestar reads this class attribute
    tags = ["admin"]  # noqa: RUF012 - Litestar reads this class attribute
    security = [{"adminToken": []}]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        "/",
        operation_id="listSigningKeys",
        summary="Every signing key with its status",
        responses=problems(401, 429),
    )
    async def list_keys(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services]
    ) -> KeyList:
        keys = await KeyAdministration(services.key_ring).list(_actor(request))
        return KeyList(keys=[key_view(k) for k in keys])

    @post(
        "/rotate",
        operation_id="rotateSigningKey",
        status_code=201,
        summary="Make a new key active (a prepared `next` key, or a new import); the old retires",
        description=(
            "With three keys in IVS, the oldest retiring key is deleted first when it is safe; "
            "otherwise 409 says when it will be, or how to force it."
        ),
        responses=problems(401, 409, 429, 502, 503),
    )
    async def rotate(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services]
    ) -> KeyView:
        rotation = await KeyAdministration(services.key_ring).rotate(_actor(request))
        return key_view(rotation.active)

    @post(
        "/prepare",
        operation_id="prepareSigningKey",
        status_code=201,
        summary="Import the next key ahead of time (status `next`); rotate promotes it",
        responses=problems(401, 409, 429, 502, 503),
    )
    async def prepare(
        self, request: Request[Any, Any, Any], services: NamedDependency[Services]
    ) -> KeyView:
        key = await KeyAdministration(services.key_ring).prepare(_actor(request))
        return key_view(key)

    @delete(
        "/{name:str}",
        operation_id="deleteSigningKey",
        status_code=200,
        summary="DeletePublicKey and forget the private key",
        responses=problems(400, 401, 404, 409, 429, 502, 503),
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
        operation_id="revokeSigningKey",
        status_code=200,
        summary="A compromised key: DeletePublicKey at once; a new key signs if it was active",
        description=(
            "Every unused token signed with the key stops joining at once; the response "
            "says how many tokens that was (and what the count covers)."
        ),
        responses=problems(400, 401, 404, 409, 429, 502, 503),
    )
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        name: FromPath[str],
    ) -> KeyRevoked:
        result = await KeyAdministration(services.key_ring).revoke(_actor(request), name)
        return revocation_view(result)

"""Admin routes for the signing key ring: list, rotate, delete."""

from __future__ import annotations

import logging
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from token_service.api.guards import require_admin
from token_service.api.openapi_responses import problems
from token_service.api.schemas import KeyDeleted, KeyList, KeyView
from token_service.api.services import Services
from token_service.keys import SigningKey

audit = logging.getLogger("token_service.audit")


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


class AdminKeysController(Controller):
    path = "/admin/keys"
    guards = [require_admin]  # noqa: RUF012 - Litestar reads this class attribute
    tags = ["admin"]  # noqa: RUF012 - Litestar reads this class attribute
    security = [{"adminToken": []}]  # noqa: RUF012 - Litestar reads this class attribute

    @get("/", summary="Every signing key with its status", responses=problems(401))
    async def list_keys(self, services: NamedDependency[Services]) -> KeyList:
        return KeyList(keys=[key_view(k) for k in services.key_ring.list_keys()])

    @post(
        "/rotate",
        status_code=201,
        summary="Generate and import a new key, make it active; the old one retires",
        responses=problems(401, 409, 502, 503),
    )
    async def rotate(self, services: NamedDependency[Services]) -> KeyView:
        key = await services.key_ring.rotate()
        audit.info("signing key rotated", extra={"event": "key_rotated", "key": key.name})
        return key_view(key)

    @delete(
        "/{name:str}",
        status_code=200,
        summary="DeletePublicKey and forget the private key",
        responses=problems(401, 404, 409, 502, 503),
    )
    async def delete_key(
        self,
        services: NamedDependency[Services],
        name: FromPath[str],
        force: Annotated[
            bool,
            QueryParameter(description="delete even the active key or one with unexpired tokens"),
        ] = False,
    ) -> KeyDeleted:
        result = await services.key_ring.delete(name, force=force)
        audit.info(
            "signing key deleted",
            extra={"event": "key_deleted", "key": name, "forced": result.forced},
        )
        return KeyDeleted(deleted=key_view(result.key), forced=result.forced)

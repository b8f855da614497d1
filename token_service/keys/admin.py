"""Key administration: the one implementation behind the admin API and `token-service keys`.

Every call is audited: one structured line on the `token_service.audit` logger with
who (an admin token's position in TOKEN_SERVICE_ADMIN_TOKENS, the CLI's OS user, or
the scheduler), what, when and the outcome; never a token or a key.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from token_service.errors import Conflict, DomainError
from token_service.keys.model import SigningKey, iso
from token_service.keys.ring import DeleteResult, KeyRing, Reconciliation, Revocation, Rotation

audit_log = logging.getLogger("token_service.audit")
_T = TypeVar("_T")


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"


def scheduler_actor() -> str:
    return f"scheduler:{socket.gethostname()}:{os.getpid()}"


def audit(actor: str, action: str, outcome: str, **details: Any) -> None:
    """One audit line: `event` key_<action>, `actor`, `outcome`, `at` and the details."""
    audit_log.info(
        "key %s by %s: %s",
        action,
        actor,
        outcome,
        extra={
            "event": f"key_{action}",
            "actor": actor,
            "action": action,
            "outcome": outcome,
            "at": iso(datetime.now(UTC)),
            **details,
        },
    )


def _key(key: SigningKey) -> dict[str, str]:
    return {"key": key.name, "keyArn": key.arn}


class KeyAdministration:
    """List, rotate, prepare, delete and revoke keys, each call audited."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def _audited(
        self,
        actor: str,
        action: str,
        run: Callable[[], Awaitable[_T]],
        describe: Callable[[_T], dict[str, Any]],
        **details: Any,
    ) -> _T:
        try:
            result = await run()
        except DomainError as exc:
            audit(actor, action, "refused", problem=exc.code, detail=exc.detail, **details)
            raise
        except Exception as exc:
            audit(actor, action, "failed", problem=type(exc).__name__, **details)
            raise
        audit(actor, action, "ok", **details, **describe(result))
        return result

    async def list(self, actor: str) -> list[SigningKey]:
        async def run() -> list[SigningKey]:
            return self.ring.list_keys()

        return await self._audited(actor, "list", run, lambda keys: {"count": len(keys)})

    async def rotate(self, actor: str) -> Rotation:
        def describe(rotation: Rotation) -> dict[str, Any]:
            return {
                **_key(rotation.active),
                "promoted": rotation.promoted,
                "retired": rotation.retired.name if rotation.retired else None,
                "deleted": [k.name for k in rotation.deleted],
            }

        return await self._audited(actor, "rotate", self.ring.rotate_keys, describe)

    async def prepare(self, actor: str) -> SigningKey:
        return await self._audited(actor, "prepare", self.ring.prepare, _key)

    async def delete(self, actor: str, name: str, *, force: bool = False) -> DeleteResult:
        async def run() -> DeleteResult:
            return await self.ring.delete(name, force=force)

        def describe(result: DeleteResult) -> dict[str, Any]:
            return {"keyArn": result.key.arn, "forced": result.forced}

        return await self._audited(actor, "delete", run, describe, key=name, force=force)

    async def revoke(self, actor: str, name: str) -> Revocation:
        async def run() -> Revocation:
            return await self.ring.revoke(name)

        def describe(result: Revocation) -> dict[str, Any]:
            return {
                "keyArn": result.revoked.arn,
                "invalidatedTokens": result.invalidated_tokens,
                "active": result.active.name if result.active else None,
                "problemAfter": result.problem,
            }

        return await self._audited(actor, "revoke", run, describe, key=name)

    async def reconcile(self, actor: str) -> Reconciliation:
        async def run() -> Reconciliation:
            result = await self.ring.reconcile()
            if result is None:
                raise Conflict(
                    "another key operation is in progress (on this or another replica); "
                    "retry in a few seconds"
                )
            return result

        def describe(result: Reconciliation) -> dict[str, Any]:
            return {
                "deleted": [k.name for k in result.deleted],
                "unknown": [k.name for k in result.unknown],
            }

        return await self._audited(actor, "reconcile", run, describe)

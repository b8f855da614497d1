"""`token-service keys ...`: the same audited key operations as the admin API, from a shell."""

from __future__ import annotations

import argparse
import json

import msgspec

from token_service.bootstrap.keys import operator_key_admin
from token_service.config import Settings
from token_service.keys.admin import cli_actor
from token_service.keys.views import key_view, reconciliation_view, revocation_view


def _dump(value: object) -> None:
    print(json.dumps(msgspec.to_builtins(value), indent=2))


async def run_keys_command(settings: Settings, args: argparse.Namespace) -> int:
    actor = cli_actor()
    async with operator_key_admin(settings) as admin:
        command = args.keys_command
        if command == "list":
            _dump({"keys": [key_view(k) for k in await admin.list(actor)]})
        elif command == "rotate":
            rotation = await admin.rotate(actor)
            _dump(key_view(rotation.active))
        elif command == "prepare":
            _dump(key_view(await admin.prepare(actor)))
        elif command == "delete":
            result = await admin.delete(actor, args.name, force=args.force)
            _dump({"deleted": key_view(result.key), "forced": result.forced})
        elif command == "revoke":
            _dump(revocation_view(await admin.revoke(actor, args.name)))
        elif command == "reconcile":
            _dump(reconciliation_view(await admin.reconcile(actor)))
        return 0

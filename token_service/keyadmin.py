"""`token-service keys ...`: the same key ring operations as the admin API, from a shell."""

from __future__ import annotations

import argparse
import json

import msgspec

from token_service.api.admin_keys import key_view
from token_service.app import build_ivs, build_key_ring, build_policy
from token_service.config import Settings
from token_service.ivs import Ivs


def _dump(value: object) -> None:
    print(json.dumps(msgspec.to_builtins(value), indent=2))


async def run_keys_command(settings: Settings, args: argparse.Namespace) -> int:
    ivs = Ivs(build_ivs(settings), workers=2)
    try:
        ring = build_key_ring(settings, ivs, build_policy(settings))
        if args.keys_command == "list":
            _dump({"keys": [key_view(k) for k in ring.list_keys()]})
        elif args.keys_command == "rotate":
            _dump(key_view(await ring.rotate()))
        elif args.keys_command == "delete":
            result = await ring.delete(args.name, force=args.force)
            _dump({"deleted": key_view(result.key), "forced": result.forced})
        return 0
    finally:
        ivs.close()

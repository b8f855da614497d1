"""`token-service participants ...`: the mapping log from a shell, read from Redis.

The CLI reads the same Redis store as every replica, so it needs
`TOKEN_SERVICE_REDIS_URL`; without Redis the records live in the serving process
only, and the admin API (`GET /admin/participants/...`) is the way to read them.
`participants migrate` moves the user index of records stored up to 0.1.0
(`mapping.migration`).
"""

from __future__ import annotations

import argparse
import json

import msgspec

from token_service.bootstrap.clients import operator_redis
from token_service.bootstrap.features import build_user_naming
from token_service.config import Settings
from token_service.errors import ConfigurationError, NotFound
from token_service.mapping.migration import migrate_user_indexes
from token_service.mapping.store import RedisMappingStore
from token_service.mapping.views import participant_body


def _print(value: object) -> None:
    print(json.dumps(msgspec.to_builtins(value), indent=2))


async def run_participants_command(settings: Settings, args: argparse.Namespace) -> int:
    async with operator_redis(settings) as redis_client:
        if redis_client is None:
            raise ConfigurationError(
                [
                    "TOKEN_SERVICE_REDIS_URL: the participants commands read the shared mapping "
                    "store; without Redis, use the admin API of the running service"
                ]
            )
        store = RedisMappingStore(
            redis_client, retention_seconds=settings.mapping.retention_seconds
        )
        if args.participants_command == "show":
            view = await store.get(args.participant_id)
            if view is None:
                raise NotFound(f"no mapping record for participant {args.participant_id}")
            _print(participant_body(view))
        elif args.participants_command == "migrate":
            report = await migrate_user_indexes(redis_client)
            _print(report)
        else:
            issuer = build_user_naming(settings).issuer(
                args.user_id,
                msgspec.UNSET if args.issuer is None else args.issuer,
                user_field="USER_ID",
                issuer_field="--issuer",
            )
            page = await store.by_user(
                args.user_id, issuer=issuer, limit=args.limit, cursor=args.cursor
            )
            _print(
                {
                    "participants": [participant_body(v) for v in page.items],
                    "nextCursor": page.next_cursor,
                }
            )
        return 0

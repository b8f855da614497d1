"""The apps bench/floor.py and bench/ivs_latency.py serve: the least a service can do.

`raw_app` and `litestar_app` (bench/floor.py) answer a token-shaped POST (JSON body,
bearer header) with a token-sized JSON body, so their CPU per request is the floor
under the service's own on this machine. `ivs_floor_app` (bench/ivs_latency.py) is the
least a Litestar service calling boto3's CreateParticipantToken off its event loop can
do, optionally with the two Redis round trips ivs mode cannot avoid: two trivial script
calls, or the service's own two scripts (`FLOOR_REDIS_SCRIPTS=service`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import boto3
import msgspec
from botocore.config import Config
from litestar import Litestar, post
from litestar.types import Receive, Scope, Send

from token_service.admission.gate import RedisGate
from token_service.admission.ratelimit import RateLimits
from token_service.domain import Rate
from token_service.infra.lane import LaneScript, RedisLane
from token_service.infra.redis import build_redis
from token_service.ivs.budget import BudgetRate, IvsCallBudget, RedisSlots
from token_service.mapping.records import MappingRecord
from token_service.mapping.store import RedisMappingStore

if TYPE_CHECKING:
    from mypy_boto3_ivs_realtime import IvsrealtimeClient
    from mypy_boto3_ivs_realtime.type_defs import CreateParticipantTokenResponseTypeDef

RESPONSE = msgspec.json.encode({"token": "x" * 700, "participantId": "p" * 22})


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Plain ASGI: read the body, answer 201 with a fixed body."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(RESPONSE)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": RESPONSE})


class TokenBody(msgspec.Struct, rename="camel"):
    stage_arn: str
    capabilities: list[str] | None = None


@post("/v1/participant-tokens", status_code=201)
async def issue(data: TokenBody) -> dict[str, str]:
    return {"token": "x" * 700, "participantId": "p" * 22, "stageArn": data.stage_arn}


def litestar_app() -> Litestar:
    """Litestar with one route, its body decoded into a struct, no middleware."""
    return Litestar([issue], debug=False, logging_config=None, openapi_config=None)


#: As token_service/ivs/client.py: worker threads for IVS calls, and as many pooled connections.
IVS_WORKERS = 16
#: token_service/config.py's defaults for the IVS connect and read timeouts.
IVS_CONNECT_TIMEOUT_SECONDS = 2.0
IVS_READ_TIMEOUT_SECONDS = 5.0
#: A trivial script: one EVALSHA round trip, as admission and the mapping record each are.
TRIVIAL_SCRIPT = "return redis.call('TIME')"


def floor_record(
    participant_id: str,
    user: str,
    stage_arn: str,
    *,
    capability: str,
    signer: str,
    key_arn: str | None = None,
) -> MappingRecord:
    """A mapping record as the floor apps store one: an hour's token, one capability."""
    now = int(time.time())
    return MappingRecord(
        participant_id=participant_id,
        app_user_id=user,
        token_user_id=user,
        stage_arn=stage_arn,
        capabilities=[capability],
        issued_at=now,
        expires_at=now + 3600,
        signer=signer,
        key_arn=key_arn,
    )


class _ServiceScripts:
    """ivs mode's two Redis round trips as the service makes them: its own gate's
    admission script (bans, three limits, the IVS budget's slot folded in) and, once IVS
    answered, its mapping record script, over the lane. Limits and budget far above any
    load; keys of their own (`floor` scope, `floor-user`)."""

    def __init__(self, redis_url: str, lane: RedisLane) -> None:
        client = build_redis(redis_url)
        high = Rate(count=1_000_000, period_seconds=1)
        slots = RedisSlots(client, BudgetRate.of(high), scope="floor", lane=lane)
        self._budget = IvsCallBudget(slots, max_wait_seconds=0.25)
        store = RedisMappingStore(client, retention_seconds=86_400, lane=lane)
        self._gate = RedisGate(
            client, store, retention_seconds=86_400, lane=lane, budget=self._budget
        )
        self._rates = RateLimits(user=high, ip=high, stage=high)

    async def admit(self, stage_arn: str) -> None:
        limits = self._rates.for_request(
            user_key="floor-user", ip_subject="127.0.0.1", stage_arn=stage_arn
        )
        admission = await self._gate.admit(
            limits, issuer=None, user_id="floor-user", stage_arn=stage_arn, record=None
        )
        if not admission.admitted:
            raise RuntimeError("the floor's limits are set far above any load")
        await self._budget.acquire()  # the slot the script held: no Redis call

    async def record(self, stage_arn: str, participant_id: str) -> None:
        record = floor_record(
            participant_id, "floor-user", stage_arn, capability="SUBSCRIBE", signer="ivs"
        )
        await self._gate.record(record)


def ivs_floor_app() -> Litestar:
    """One route that mints a participant token through boto3, called off the event loop.

    The client is built once with token_service/ivs/client.py `build_client`'s configuration
    (endpoint from FLOOR_IVS_ENDPOINT_URL). When FLOOR_REDIS_URL is set, every request
    also makes two Redis script calls, one before the IVS call and one after it answered:
    ivs mode's admission and mapping record, as trivial scripts or, with
    FLOOR_REDIS_SCRIPTS=service, as the service's own (`_ServiceScripts`). No
    authentication, policy, metrics or logging.
    """
    endpoint_url = os.environ["FLOOR_IVS_ENDPOINT_URL"]
    redis_url = os.environ.get("FLOOR_REDIS_URL")
    service_scripts = os.environ.get("FLOOR_REDIS_SCRIPTS") == "service"
    pool = ThreadPoolExecutor(max_workers=IVS_WORKERS, thread_name_prefix="ivs")
    config = Config(
        region_name="us-east-1",
        connect_timeout=IVS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=IVS_READ_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=IVS_WORKERS,
        tcp_keepalive=True,
    )
    client: IvsrealtimeClient = boto3.session.Session().client(
        "ivs-realtime", endpoint_url=endpoint_url, config=config
    )
    # The service's own Redis connection for the token path (token_service/infra/lane.py).
    lane = None if redis_url is None else RedisLane(redis_url)
    trivial = LaneScript.of(TRIVIAL_SCRIPT)
    scripts = (
        _ServiceScripts(redis_url, lane)
        if service_scripts and redis_url is not None and lane is not None
        else None
    )

    def create(stage_arn: str) -> CreateParticipantTokenResponseTypeDef:
        return client.create_participant_token(
            stageArn=stage_arn, userId="bench-user", duration=60, capabilities=["SUBSCRIBE"]
        )

    @post("/v1/participant-tokens", status_code=201)
    async def issue_ivs(data: TokenBody) -> dict[str, str]:
        if scripts is not None:
            await scripts.admit(data.stage_arn)
        elif lane is not None:
            await lane.run(trivial, [], [])  # admission
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(pool, create, data.stage_arn)
        token = answer["participantToken"]
        participant_id = token.get("participantId", "")
        if scripts is not None:
            await scripts.record(data.stage_arn, participant_id)
        elif lane is not None:
            await lane.run(trivial, [], [])  # the mapping record
        return {"token": token.get("token", ""), "participantId": participant_id}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if lane is not None:
                await lane.close()
            pool.shutdown(wait=False, cancel_futures=True)
            client.close()

    return Litestar(
        [issue_ivs], debug=False, logging_config=None, openapi_config=None, lifespan=[lifespan]
    )

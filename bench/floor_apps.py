"""The apps bench/floor.py and bench/ivs_latency.py serve: the least a service can do.

`raw_app` and `litestar_app` (bench/floor.py) answer a token-shaped POST (JSON body,
bearer header) with a token-sized JSON body, so their CPU per request is the floor
under the service's own on this machine. `ivs_floor_app` (bench/ivs_latency.py) is the
least a Litestar service calling boto3's CreateParticipantToken off its event loop can
do, optionally with the two Redis round trips ivs mode cannot avoid.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import boto3
import msgspec
from botocore.config import Config
from litestar import Litestar, post
from litestar.types import Receive, Scope, Send

from token_service.infra.lane import LaneScript, RedisLane

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


def ivs_floor_app() -> Litestar:
    """One route that mints a participant token through boto3, called off the event loop.

    The client is built once with token_service/ivs/client.py `build_client`'s configuration
    (endpoint from FLOOR_IVS_ENDPOINT_URL). When FLOOR_REDIS_URL is set, every request
    also makes two trivial Redis script calls, one before the IVS call and one after it
    answered: ivs mode's admission and mapping record. No authentication, policy,
    metrics or logging.
    """
    endpoint_url = os.environ["FLOOR_IVS_ENDPOINT_URL"]
    redis_url = os.environ.get("FLOOR_REDIS_URL")
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

    def create(stage_arn: str) -> CreateParticipantTokenResponseTypeDef:
        return client.create_participant_token(
            stageArn=stage_arn, userId="bench-user", duration=60, capabilities=["SUBSCRIBE"]
        )

    @post("/v1/participant-tokens", status_code=201)
    async def issue_ivs(data: TokenBody) -> dict[str, str]:
        if lane is not None:
            await lane.run(trivial, [], [])  # admission
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(pool, create, data.stage_arn)
        if lane is not None:
            await lane.run(trivial, [], [])  # the mapping record
        token = answer["participantToken"]
        return {"token": token.get("token", ""), "participantId": token.get("participantId", "")}

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

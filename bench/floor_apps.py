"""The two apps bench/floor.py serves: the least an ASGI server and Litestar can do.

Both answer a token-shaped POST (JSON body, bearer header) with a token-sized JSON body,
so their CPU per request is the floor under the service's own on this machine.
"""

from __future__ import annotations

import msgspec
from litestar import Litestar, post
from litestar.types import Receive, Scope, Send

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

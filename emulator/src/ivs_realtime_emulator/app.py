"""The emulator as an ASGI app (Litestar): `create_emulator_app(options)`.

Thin: the `/_emulator/*` routes and one catch-all that hands every other request
to the model-driven pipeline in `service.py`, which decides the operation from
the method and path the way the real service does.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response, delete, get, post, route
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.service import Answer, EmulatorService

_METHODS: list[Any] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


def _service(request: Request[Any, Any, Any]) -> EmulatorService:
    service: EmulatorService = request.app.state["service"]
    return service


def _respond(answer: Answer) -> Response[bytes]:
    return Response(
        content=answer.encoded(),
        status_code=answer.status,
        headers=answer.headers,
        media_type="application/json",
    )


@get("/_emulator/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@post("/_emulator/join")
async def join_stage(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _respond(_service(request).join(await request.body()))


@post("/_emulator/exchange")
async def exchange_token(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _respond(_service(request).exchange(await request.body()))


@post("/_emulator/ingest")
async def ingest_stream(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _respond(_service(request).ingest(await request.body()))


@post("/_emulator/faults")
async def set_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _respond(_service(request).set_faults(await request.body()))


@get("/_emulator/faults", sync_to_thread=False)
def get_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _respond(_service(request).get_faults())


@delete("/_emulator/faults", status_code=200, sync_to_thread=False)
def clear_faults(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _respond(_service(request).clear_faults())


@get("/_emulator/stats", sync_to_thread=False)
def get_stats(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _respond(_service(request).get_stats())


@route(["/", "/{path:path}"], http_method=_METHODS)
async def aws_operation(request: Request[Any, Any, Any]) -> Response[bytes]:
    # The raw path keeps %2F inside a label (a tagged resource's ARN) apart from a real "/".
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    headers = {key.lower(): value for key, value in request.headers.items()}
    answer = await _service(request).handle_aws(
        request.method,
        raw_path.decode("latin-1"),
        request.scope.get("query_string", b"").decode("latin-1"),
        headers,
        await request.body(),
    )
    return _respond(answer)


def _http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    """Framework errors on `/_emulator/*` (wrong method, body too large) in the emulator's form."""
    reason = "not_found" if error.status_code == 404 else "invalid_request"
    if error.status_code == 405:
        reason = "method_not_allowed"
    answer = Answer(error.status_code, {"reason": reason, "message": error.detail})
    return _respond(answer)


def create_emulator_app(options: EmulatorOptions | None = None) -> Litestar:
    """A fresh emulator with its own state; nothing is shared between two apps."""
    service = EmulatorService(options or EmulatorOptions())
    return Litestar(
        route_handlers=[
            health,
            join_stage,
            exchange_token,
            ingest_stream,
            set_faults,
            get_faults,
            clear_faults,
            get_stats,
            aws_operation,
        ],
        state=State({"service": service}),
        openapi_config=None,
        exception_handlers={HTTPException: _http_error},
    )

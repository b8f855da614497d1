"""`POST /v1/participant-tokens`: authenticate, decide, issue, respond.

The hottest route, served by a Litestar ASGI handler (`@asgi`): still in the one app,
behind the same middleware (CORS, request id, metrics, the access log, tracing) and the
app's guards, its exceptions answered by the app's exception handlers (Litestar puts its
exception middleware between a route's middleware and the handler, for ASGI handlers as
for the others: the same problem+json documents). What it leaves out is the machinery
this route paid for on every token and used nothing of: a `Request` object, dependency
injection and the kwargs model, a second (lenient) decode of the body, a `Response`
object and its header encoding. Measured on this 2-core machine (bench/RESULTS.md).

So the handler does by hand what Litestar did, in the same order: the method (405 with
`Allow`, OPTIONS answered 204), authentication first (`guards.app_user_of`: before the
body is looked at), the declared content type (415), the body read under the app's
16 KiB limit (413), one strict decode (400, `strict_body`), then the desk.

Litestar documents no ASGI handler in the OpenAPI document: `create_participant_token_doc`
below declares the operation, exactly as the route was documented when it was a `@post`
handler, and `openapi.DocumentedOpenAPIConfig` adds it to the document (tests/http/
test_openapi_document.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, cast

import msgspec
from litestar import Request, Response, asgi, post
from litestar.exceptions import InternalServerException, MethodNotAllowedException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import JSONBody

from token_service.admission.ratelimit import Decision, response_headers
from token_service.domain import AppUser, IssuedToken, TokenRequest, iso_utc
from token_service.errors import FieldError, InvalidRequest
from token_service.http.client_ip import Address, address_text, limit_subject, scope_address
from token_service.http.guards import USER_STATE_KEY, app_user_of, request_address
from token_service.http.openapi import problems
from token_service.http.schemas import TokenRequestBody, TokenResponseBody
from token_service.http.services import Services
from token_service.http.strict_body import check_content_type, decode_body
from token_service.observability.logs import request_id_var
from token_service.tokens.desk import Caller

if TYPE_CHECKING:
    from litestar.types import (
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        HTTPScope,
        Receive,
        Scope,
        Send,
    )

PATH: Final = "/v1/participant-tokens"
#: The methods of the path, as its `Allow` field lists them (`options_allow`).
METHODS: Final = ("OPTIONS", "POST")
#: Bodies over this are refused with 413 before they are read whole: the app's
#: `request_max_body_size` (bootstrap.app sets it from here), which an ASGI handler
#: enforces itself.
MAX_BODY_BYTES: Final = 16 * 1024
#: Litestar's own `Allow` of a 405 answered while routing (a method no handler has).
_NOT_ALLOWED: Final = {"allow": "POST, OPTIONS"}

_encode = msgspec.json.Encoder().encode
_JSON: Final = (b"content-type", b"application/json")


def to_response(token: IssuedToken) -> TokenResponseBody:
    return TokenResponseBody(
        token=token.token,
        participant_id=token.participant_id,
        user_id=token.user_id,
        stage_arn=token.stage_arn,
        capabilities=sorted(token.capabilities),
        attributes=dict(token.attributes),
        duration_minutes=token.duration_minutes,
        expiration_time=iso_utc(token.expires_at),
        signer=token.signer.value,
        key_arn=token.key_arn,
    )


#: An answer carrying a token is never cached (it is a credential).
_NEVER_CACHED: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def token_headers(decision: Decision | None) -> dict[str, str]:
    """The headers of an answer carrying a token: never cached (it is a credential), and
    the rate limits the caller may see."""
    headers = dict(_NEVER_CACHED)
    if decision is not None:
        headers.update(response_headers(decision))
    return headers


def caller(request: Request[Any, Any, Any], services: Services) -> Caller:
    """Who asks, from the verified user and the connection (trusted proxies only): for the
    routes that authenticate in a guard (the exchange)."""
    return _caller(
        request.state[USER_STATE_KEY],
        request_address(request, services),
        request.headers.get("user-agent"),
    )


def _caller(user: AppUser, address: Address | None, user_agent: str | None) -> Caller:
    return Caller(
        user=user,
        ip_subject=limit_subject(address),
        client_ip=address_text(address) if address is not None else None,
        user_agent=user_agent,
        request_id=request_id_var.get(),
    )


def _token_head(decision: Decision, length: int) -> list[tuple[bytes, bytes]]:
    """`token_headers` as the raw fields of the 201, in the order Litestar sent them."""
    head = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in token_headers(decision).items()
    ]
    head.append(_JSON)
    head.append((b"content-length", str(length).encode("latin-1")))
    return head


async def read_body(
    receive: Receive, announced: bytes | None, limit: int = MAX_BODY_BYTES
) -> bytes:
    """The request body, refused as Litestar's `Request.body()` refuses it: 413 when the
    announced length (`announced`, the first `Content-Length`) or the received one is over
    `limit`, the disconnect error when the client hangs up first (answered 499, see
    `disconnects`). An announced length that is no number is a 400 naming the field (the
    servers this runs under refuse it before the app; an ASGI caller may not)."""
    if announced is not None:
        # RFC 9110 8.6: digits only. `int()` would also take `-1`, ` 7`, `+7` and `1_0`.
        if not announced.isdigit():
            raise InvalidRequest(
                "Content-Length is not a number of bytes",
                [FieldError("Content-Length", "expected digits only")],
            )
        if int(announced) > limit:
            raise RequestEntityTooLarge
    chunks: list[bytes] = []
    total = 0
    while True:
        event = await receive()
        if event["type"] == "http.request":
            chunk = event.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > limit:
                    raise RequestEntityTooLarge
                chunks.append(chunk)
            if not event.get("more_body", False):
                break
        elif event["type"] == "http.disconnect":
            raise InternalServerException("client disconnected prematurely")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@asgi(PATH, copy_scope=False, opt={"allow": METHODS})
async def create_participant_token(scope: Scope, receive: Receive, send: Send) -> None:
    method = cast("HTTPScope", scope)["method"]
    if method != "POST":
        if method == "OPTIONS":
            # Fresh messages: middleware adds its fields to them (`x-request-id`, `allow`).
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        raise MethodNotAllowedException(headers=_NOT_ALLOWED)
    services: Services = scope["app"].state["services"]
    authorization: list[str] = []
    content_types: list[str] = []
    user_agent: str | None = None
    # The first `Content-Length` line, as `read_body` takes it.
    announced: bytes | None = None
    for raw_name, value in scope["headers"]:
        name = raw_name.lower()
        if name == b"authorization":
            authorization.append(value.decode("latin-1"))
        elif name == b"content-type":
            content_types.append(value.decode("latin-1"))
        elif name == b"content-length" and announced is None:
            announced = value
        elif name == b"user-agent" and user_agent is None:
            user_agent = value.decode("latin-1")
    # Authentication first: an anonymous caller learns nothing of the body's schema.
    user = await app_user_of(services, authorization)
    check_content_type(content_types)
    data = decode_body(await read_body(receive, announced), TokenRequestBody)
    token_request = TokenRequest(
        stage_arn=data.stage_arn,
        capabilities=frozenset(data.capabilities) if data.capabilities is not None else None,
        duration_minutes=data.duration_minutes,
        attributes=data.attributes,
    )
    address = scope_address(scope, services.trusted_proxies, services.proxy_header)
    outcome = await services.desk.issue(_caller(user, address, user_agent), token_request)
    body = _encode(to_response(outcome.token))
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 201,
        "headers": _token_head(outcome.decision, len(body)),
    }
    answer: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(answer)


# Never routed: the operation as the OpenAPI document declares it (see the module's doc).
@post(
    PATH,
    operation_id="createParticipantToken",
    status_code=201,
    summary="Issue a participant token for a stage",
    description=(
        "Authenticated with the app user's JWT. The server-side policy decides the "
        "capabilities, duration and attributes; asking for more than allowed is 403."
    ),
    tags=["tokens"],
    responses=problems(400, 401, 403, 404, 413, 415, 429, 502, 503, 504),
    security=[{"appUserJwt": []}],
)
async def create_participant_token_doc(
    data: JSONBody[TokenRequestBody],
) -> Response[TokenResponseBody]:
    raise NotImplementedError  # pragma: no cover - documentation only


#: Handlers served elsewhere, documented as these (`DocumentedOpenAPIConfig.documented`).
DOCUMENTED: Final[tuple[Any, ...]] = (create_participant_token_doc,)

"""The one mapping from errors to `application/problem+json` (RFC 9457) responses.

Domain errors carry their own safe detail; framework errors (bad JSON, unknown
routes, oversize bodies) are rephrased; anything unexpected becomes a bare 500 with
the request id, its traceback going to the log only. No response here ever echoes
a token, a key or the Authorization header.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from redis.exceptions import RedisError

from token_service.errors import (
    AuthenticationFailed,
    ConfigurationError,
    Conflict,
    DomainError,
    FieldError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UnsupportedMediaType,
    UpstreamFailed,
    UpstreamTimeout,
)
from token_service.http.disconnects import CLIENT_CLOSED_REQUEST, client_disconnected
from token_service.http.problem_json import PROBLEM_JSON, problem_document
from token_service.observability.logs import new_request_id, request_id_var

log = logging.getLogger(__name__)


_STATUS: list[tuple[type[DomainError], int]] = [
    # Before InvalidRequest, its base: the first match wins.
    (UnsupportedMediaType, 415),
    (InvalidRequest, 400),
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (RateLimited, 429),
    (UpstreamFailed, 502),
    (UpstreamTimeout, 504),
    (ServiceUnavailable, 503),
]

_HTTP_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def status_for(exc: DomainError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def problem(
    status: int,
    *,
    title: str,
    detail: str,
    code: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    body = problem_document(status, title=title, detail=detail, code=code)
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    response_headers = dict(headers or {})
    request_id = request_id_var.get()
    if request_id is None:
        # Errors raised before the middleware runs (no route matched) still get an id.
        request_id = new_request_id()
        response_headers["X-Request-Id"] = request_id
    body["requestId"] = request_id
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=response_headers)


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def _count(request: Request[Any, Any, Any], code: str) -> None:
    metrics = request.app.state.get("metrics")
    if metrics is not None:
        metrics.refusals_by_code(code).inc()


def domain_error_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    assert isinstance(exc, DomainError)  # noqa: S101 - registered for DomainError only
    _count(request, exc.code)
    status = status_for(exc)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    errors: Sequence[FieldError] = ()
    if isinstance(exc, InvalidRequest):
        errors = exc.errors
    if isinstance(exc, AuthenticationFailed):
        # RFC 6750: tell the client which scheme, and that its token was the problem.
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(exc, PermissionDenied) and exc.rule:
        extra["rule"] = exc.rule
    if isinstance(exc, RateLimited):
        headers.update(exc.headers)
    if isinstance(exc, RateLimited | ServiceUnavailable) and exc.retry_after is not None:
        headers["Retry-After"] = _retry_after(exc.retry_after)
    if status >= 500:
        log.warning("request failed: %s", exc.detail, extra={"status": status, "error": exc.code})
    return problem(
        status,
        title=exc.title,
        detail=exc.detail,
        code=exc.code,
        errors=errors,
        headers=headers,
        extra=extra,
    )


_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]*)`")
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


def _field_errors(exc: ValidationException) -> list[FieldError]:
    errors: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid"))
        field = str(item.get("key", ""))
        unknown = _UNKNOWN_FIELD.search(message)
        missing = _MISSING_FIELD.search(message)
        if unknown:
            field, message = unknown.group(1), "unknown field"
        elif missing:
            field, message = missing.group(1), "required"
        elif field == "data" and message.startswith("'"):
            field, message = "body", "a JSON object is required"
        path = _AT_PATH.search(message)
        if path:
            message = message[: path.start()]
        errors.append(FieldError(field=field.replace("[...]", ""), message=message))
    return errors


def http_exception_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    status = exc.status_code
    _count(request, f"http-{status}")
    if isinstance(exc, ValidationException) and status == 400:
        errors = _field_errors(exc)
        detail = str(exc.detail)
        if detail.startswith("Validation failed"):
            detail = "the request body does not match the schema"
        return problem(
            400, title="Invalid request", detail=detail, code="invalid-request", errors=errors
        )
    headers = {
        k: v for k, v in (exc.headers or {}).items() if k.lower() in {"allow", "retry-after"}
    }
    detail = str(exc.detail) if status < 500 else "unexpected error; quote the request id"
    if status == 413:
        detail = "the request body is larger than this endpoint accepts (16 KiB)"
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return problem(
        status,
        title=_HTTP_TITLES.get(status, "Error"),
        detail=detail,
        code=f"http-{status}",
        headers=headers,
    )


def unicode_error_handler(
    request: Request[Any, Any, Any], _: Exception
) -> Response[dict[str, Any]]:
    _count(request, "invalid-request")
    return problem(
        400,
        title="Invalid request",
        detail="the request body is not valid UTF-8 JSON",
        code="invalid-request",
        errors=[FieldError("body", "not valid UTF-8")],
    )


def redis_error_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    """Redis failing on a path without its own fallback (admin lookups, exchanges): 503."""
    _count(request, "unavailable")
    log.warning("Redis failed while serving: %s", type(exc).__name__)
    return problem(
        503,
        title="Service unavailable",
        detail="the shared store (Redis) is unavailable; retry shortly",
        code="unavailable",
        headers={"Retry-After": "1"},
    )


def unexpected_error_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    _count(request, "internal")
    if isinstance(exc, ConfigurationError):
        log.error("configuration error while serving: %s", exc.detail)
    else:
        # The traceback goes to the log (with the request id), never to the client.
        log.error(
            "unhandled error on %s %s",
            request.method,
            request.url.path,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
    return problem(
        500,
        title="Internal server error",
        detail="unexpected error; quote the request id when reporting it",
        code="internal",
    )


def client_closed_request() -> Response[dict[str, Any]]:
    """The answer to a client that hung up while its request was read: 499, which the
    HTTP metrics count under that status; no one receives it. Not a problem of the
    service, so neither counted by code nor logged."""
    return problem(
        CLIENT_CLOSED_REQUEST,
        title="Client closed request",
        detail="the client closed the connection before its request was whole",
        code="client-closed-request",
    )


Handler = Callable[[Request[Any, Any, Any], Exception], Response[dict[str, Any]]]


def _unless_client_gone(handler: Handler) -> Handler:
    """`handler`, except after the client hung up: whatever the app raised then (the body
    reader's 500 first of all) is the hang-up's doing."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
        if client_disconnected(request.scope):
            return client_closed_request()
        return handler(request, exc)

    return handle


def exception_handlers() -> ExceptionHandlersMap:
    handlers: dict[type[Exception], Handler] = {
        DomainError: domain_error_handler,
        HTTPException: http_exception_handler,
        UnicodeDecodeError: unicode_error_handler,
        RedisError: redis_error_handler,
        Exception: unexpected_error_handler,
    }
    return {kind: _unless_client_gone(handler) for kind, handler in handlers.items()}

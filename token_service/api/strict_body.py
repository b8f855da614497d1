"""Strict JSON bodies: wrong types are errors, never coerced.

Litestar decodes request bodies leniently (the string "60" becomes the integer 60),
and reports invalid UTF-8 as a 500. This hook decodes the body strictly first, as
a route's `before_request`, so every malformed body is a 400 naming the field.
Litestar then decodes the same bytes for the handler and its OpenAPI schema.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Request

from token_service.errors import FieldError, InvalidRequest

_AT_PATH = re.compile(r"^(?P<message>.*?) - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]*)`")


def _field_error(message: str) -> FieldError:
    path = ""
    located = _AT_PATH.match(message)
    if located:
        message, path = located["message"], located["path"]
    prefix = f"{path}." if path else ""
    unknown = _UNKNOWN.match(message)
    if unknown:
        return FieldError(prefix + unknown["field"], "unknown field")
    missing = _MISSING.match(message)
    if missing:
        return FieldError(prefix + missing["field"], "required")
    return FieldError(path or "body", message)


def strict_json(model: type[Any]) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    async def check(request: Request[Any, Any, Any]) -> None:
        body = await request.body()
        try:
            msgspec.json.decode(body, type=model, strict=True)
        except msgspec.ValidationError as exc:
            error = _field_error(str(exc))
            raise InvalidRequest(f"{error.field}: {error.message}", [error]) from None
        except msgspec.DecodeError:
            raise InvalidRequest(
                "the request body is not valid JSON", [FieldError("body", "malformed JSON")]
            ) from None
        except UnicodeDecodeError:
            raise InvalidRequest(
                "the request body is not valid UTF-8", [FieldError("body", "not valid UTF-8")]
            ) from None

    return check

"""Strict JSON bodies: wrong types are errors, never coerced.

Litestar decodes request bodies leniently (the string "60" becomes the integer 60),
and reports invalid UTF-8 as a 500. This hook decodes the body strictly first, as
a route's `before_request`, so every malformed body is a 400 naming the field.
Litestar then decodes the same bytes for the handler and its OpenAPI schema.
One leniency is JSON's own: `60.0` is the integer 60 (JSON has one number type, and JSON
Schema counts a whole float as an integer); `60.5` and `"60"` are still refused.

The body must be declared as JSON: `Content-Type: application/json` (or another
`application/...+json` type), without a charset other than UTF-8 (RFC 8259: JSON
between systems is UTF-8). A missing or other content type is a 415 (RFC 9110 15.5.16)
naming the `Content-Type` header, not a guess at what the bytes are; so is a request with
several `Content-Type` lines.

Things JSON decoders let through are refused too, naming the field:

* a key given twice in one object (`{"stageArn": "a", "stageArn": "b"}`): decoders
  silently keep one of them, and which one differs between a proxy, a WAF and us;
* a control character (U+0000-U+001F, U+007F-U+009F) in any key or string value:
  these end up in tokens every participant sees, in records and in logs, where a NUL
  truncates and a newline forges lines. Other code points (emoji, combining marks,
  bidi marks, U+2028/2029, U+FEFF) are kept as sent. Lone surrogates (`"\\ud800"`) are
  already malformed JSON to the decoder (they have no UTF-8 form).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request

from token_service.errors import FieldError, InvalidRequest, UnsupportedMediaType

T = TypeVar("T")

_AT_PATH = re.compile(r"^(?P<message>.*?) - at `\$\.?(?P<path>[^`]*)`$")
#: A dict's key refused (`attributes`' keys): msgspec names the dict, not the key.
_AT_KEY = re.compile(r"^(?P<message>.*?) - at `key` in `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]*)`")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Lone surrogates: valid JSON escapes (`"\\ud800"`) with no UTF-8 form.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: What a key may not show verbatim in a field name (the response must encode).
_UNSHOWABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _content_type_problem(values: list[str]) -> FieldError | None:
    if len(values) > 1:
        # One field, one value (RFC 9110 8.3): a proxy or WAF reading the last line would
        # judge another body than the one decoded here.
        return FieldError("Content-Type", "given more than once")
    value = values[0] if values else None
    if value is None or not value.strip():
        return FieldError("Content-Type", "required: application/json")
    media_type, *parameters = (part.strip() for part in value.split(";"))
    media_type = media_type.lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return FieldError("Content-Type", "must be application/json")
    for parameter in parameters:
        name, _, argument = parameter.partition("=")
        if name.strip().lower() == "charset" and argument.strip().strip('"').lower() != "utf-8":
            return FieldError("Content-Type", "JSON is UTF-8: charset must be utf-8 or absent")
    return None


class _Members(list[tuple[str, Any]]):
    """A JSON object as its members in order, duplicates kept (`object_pairs_hook`)."""


def _shown(key: str) -> str:
    """A key as it may appear in a field name: control characters escaped."""
    return _UNSHOWABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", key)


def _text_problem(text: str, field: str, what: str) -> FieldError | None:
    if _CONTROL.search(text):
        return FieldError(field, f"control character (U+0000-U+001F, U+007F-U+009F) in {what}")
    if _SURROGATE.search(text):
        return FieldError(field, f"lone surrogate in {what} (it has no UTF-8 form)")
    return None


def _member_problem(node: Any, path: str) -> FieldError | None:
    """The first duplicate key, control character or lone surrogate in a decoded body."""
    if isinstance(node, str):
        return _text_problem(node, path or "body", "value")
    children: list[tuple[str, Any]] = []
    if isinstance(node, _Members):
        seen: set[str] = set()
        for key, value in node:
            field = f"{path}.{_shown(key)}" if path else _shown(key)
            problem = (
                FieldError(field, "duplicate key")
                if key in seen
                else _text_problem(key, field, "key")
            )
            if problem is not None:
                return problem
            seen.add(key)
            children.append((field, value))
    elif isinstance(node, list):
        children = [(f"{path}[{index}]", item) for index, item in enumerate(node)]
    for field, child in children:
        problem = _member_problem(child, field)
        if problem is not None:
            return problem
    return None


#: C1 controls in UTF-8 (C2 80-9F). Other control characters and surrogates can only
#: appear in a valid JSON text escaped (after a backslash), or raw as DEL (7F).
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
#: Every string of a JSON text without backslashes, in order (quotes then pair up
#: exactly), with the colon that makes it an object key.
_STRING = re.compile(rb'"([^"]*)"(\s*:)?')


def _clean_fast(body: bytes) -> bool:
    """True if the body surely has no duplicate key, control character or surrogate.

    The full check builds every object as a list of members in Python, which costs
    tens of microseconds per request; this scan settles the common body in a few.
    """
    if b"\\" in body or b"\x7f" in body or (b"\xc2" in body and _C1_UTF8.search(body)):
        return False
    keys = [key for key, colon in _STRING.findall(body) if colon]
    return len(keys) == len(set(keys))


def _member_error(body: bytes) -> FieldError | None:
    """The first duplicate key, control character or lone surrogate, naming its field.

    Run on a body the strict decode accepted (valid, shallow JSON), and on one it
    refused as malformed, to name the field of a lone surrogate (which that decoder
    only reports as malformed input). Python's decoder stops deep nesting with
    RecursionError, and a body is at most 16 KiB."""
    if _clean_fast(body):
        return None
    try:
        document = json.loads(body, object_pairs_hook=_Members)
    except (ValueError, RecursionError):
        return FieldError("body", "malformed JSON")
    return _member_problem(document, "")


#: Beyond this a float no longer spells one integer exactly.
_EXACT_FLOAT_LIMIT = 2**53


def _whole_numbers(value: Any) -> Any:
    """`value` with every whole float (`60.0`) as the integer it spells."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_FLOAT_LIMIT:
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    return value


def _with_whole_numbers(body: bytes, model: type[T]) -> T | None:
    """The body as a `model` once `60.0` counts as the integer 60, as JSON means it (one
    number type, and JSON Schema calls a whole float an integer); None if still invalid."""
    try:
        return msgspec.convert(_whole_numbers(msgspec.json.decode(body)), type=model, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None


def _field_error(message: str) -> FieldError:
    keyed = _AT_KEY.match(message)
    if keyed:
        return FieldError(keyed["path"] or "body", f"a key: {keyed['message']}")
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


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _refused(error: FieldError) -> InvalidRequest:
    """The 400 of one field's problem, its detail naming the field."""
    return InvalidRequest(f"{error.field}: {error.message}", [error])


def _not_utf8() -> InvalidRequest:
    return InvalidRequest(
        "the request body is not valid UTF-8", [FieldError("body", "not valid UTF-8")]
    )


def strict_json(
    model: type[Any], *, optional: bool = False
) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """A `before_request` hook checking the body against `model`; with `optional`, an
    empty body (the handler's `data` is then None) is let through as is."""

    async def check(request: Request[Any, Any, Any]) -> None:
        if optional and not (await request.body()).strip():
            return
        check_content_type(request.headers.getall("content-type", []))
        check_body(await request.body(), model)

    return check


def check_content_type(values: list[str]) -> None:
    """`UnsupportedMediaType` (415) unless `values`, the request's `Content-Type` lines,
    declare one JSON body in UTF-8."""
    declared = _content_type_problem(values)
    if declared is not None:
        raise UnsupportedMediaType(f"{declared.field}: {declared.message}", [declared])


def check_body(body: bytes, model: type[Any]) -> None:
    """`InvalidRequest` naming the field when `body` is not a strict JSON `model`; the
    check of `strict_json`, also run on the request `token-service participant-token`
    builds from its flags, so both refuse the same input with the same words."""
    decode_body(body, model)


def decode_body(body: bytes, model: type[T]) -> T:
    """`body` as a `model`, refused exactly as `check_body` refuses it: for a route that
    reads its body itself (the token route) and so decodes it once, not twice. A whole
    float (`60.0`) of an integer field comes out as the integer."""
    value: T
    try:
        value = msgspec.json.decode(body, type=model, strict=True)
    except msgspec.ValidationError as exc:
        # Only on the refusal path: an accepted body costs one strict decode, as before.
        whole = _with_whole_numbers(body, model) if "got `float`" in str(exc) else None
        if whole is None:
            error = _field_error(str(exc))
            raise _refused(error) from None
        value = whole
    except UnicodeDecodeError:
        # msgspec before 0.23 raised this for invalid UTF-8 inside a string.
        raise _not_utf8() from None
    except msgspec.DecodeError:
        # msgspec 0.23 reports invalid UTF-8 as a DecodeError like any other; the
        # codec's own exception type tells the two apart, not the message text.
        if not _is_utf8(body):
            raise _not_utf8() from None
        located = _member_error(body)
        error = located if located is not None else FieldError("body", "malformed JSON")
        raise _refused(error) from None
    problem = _member_error(body)
    if problem is not None:
        raise _refused(problem)
    return value

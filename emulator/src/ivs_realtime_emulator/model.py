"""botocore's `ivs-realtime` model, put to work on the server side.

Everything the wire protocol needs comes from the model botocore ships, never from
hand-typed copies: which operation a method and path name (`match_route`), where
each input member travels (body, path label, query string, header), what a valid
input is (`validate_input`), how outputs look (`shape_output`) and which HTTP
status each error shape carries (`error_status`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

from botocore.loaders import Loader
from botocore.model import (
    ListShape,
    MapShape,
    OperationModel,
    ServiceModel,
    Shape,
    StringShape,
    StructureShape,
)

from ivs_realtime_emulator.errors import UNMODELED_STATUS, AwsError

SERVICE_NAME = "ivs-realtime"

#: Patterns the emulator replaces. The model's `ResourceArn` pattern
#: (`...:[a-z-]/...`, one letter of resource type) matches no real ARN, yet AWS
#: tags stages and public keys: accept any `<type>/<id>` ARN of the service.
PATTERN_OVERRIDES: dict[str, str] = {
    "ResourceArn": r"arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]+/[a-zA-Z0-9-]+",
}

#: Values longer than this are cut in error messages (keys, long names).
_ECHO_LIMIT = 64


@functools.cache
def service_model() -> ServiceModel:
    """The model, loaded once per process on first use (never at import)."""
    loader = Loader()
    description = loader.load_service_model(SERVICE_NAME, "service-2")
    return ServiceModel(description, SERVICE_NAME)


@dataclass(frozen=True)
class Route:
    """One operation's HTTP binding, compiled from its `requestUri`."""

    method: str
    pattern: re.Pattern[str]
    operation: OperationModel


def _compile_uri(request_uri: str) -> re.Pattern[str]:
    path = request_uri.split("?", 1)[0]
    parts: list[str] = []
    position = 0
    for label in re.finditer(r"\{([^}]+)\}", path):
        parts.append(re.escape(path[position : label.start()]))
        name = label.group(1)
        if name.endswith("+"):  # greedy label: may span slashes
            parts.append(f"(?P<{name[:-1]}>.+)")
        else:
            parts.append(f"(?P<{name}>[^/]+)")
        position = label.end()
    parts.append(re.escape(path[position:]))
    return re.compile("".join(parts))


@functools.cache
def routes() -> tuple[Route, ...]:
    model = service_model()
    return tuple(
        Route(
            method=operation.http["method"].upper(),
            pattern=_compile_uri(operation.http["requestUri"]),
            operation=operation,
        )
        for operation in (model.operation_model(name) for name in model.operation_names)
    )


def match_route(method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]] | None:
    """The operation bound to `method raw_path`, and its decoded path labels."""
    path = raw_path.split("?", 1)[0]
    for route in routes():
        if route.method != method.upper():
            continue
        found = route.pattern.fullmatch(path)
        if found is not None:
            return route.operation, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


@functools.cache
def operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


@functools.cache
def _error_statuses() -> dict[str, int]:
    statuses = dict(UNMODELED_STATUS)
    for shape in service_model().error_shapes:
        statuses[shape.name] = int(shape.metadata["error"]["httpStatusCode"])
    return statuses


def error_codes() -> frozenset[str]:
    """Every error code the emulator can answer with (for fault injection)."""
    return frozenset(_error_statuses())


def error_status(code: str) -> int:
    return _error_statuses().get(code, 400)


def error_body(code: str, message: str) -> dict[str, str]:
    """The JSON body of an error: `message`, plus the members the error shape defines."""
    body = {"message": message}
    model = service_model()
    if code in model.shape_names:
        shape = model.shape_for(code)
        if isinstance(shape, StructureShape) and "exceptionMessage" in shape.members:
            body["exceptionMessage"] = message
    return body


# ---------------------------------------------------------------- request input


def _from_text(shape: Shape, text: str, where: str) -> Any:
    """A value from a path label, query string or header, typed by its shape."""
    if shape.type_name in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise AwsError("SerializationException", f"{where} must be an integer") from None
    if shape.type_name == "boolean":
        if text not in ("true", "false"):
            raise AwsError("SerializationException", f"{where} must be true or false")
        return text == "true"
    return text


def _member_value(
    name: str,
    member: Shape,
    *,
    document: Mapping[str, Any],
    labels: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
) -> tuple[bool, Any]:
    """Whether the member was sent, and its value, from the location the model gives it."""
    location = member.serialization.get("location")
    wire_name = member.serialization.get("name", name)
    if location is None:
        return wire_name in document, document.get(wire_name)
    if location == "uri" and wire_name in labels:
        return True, _from_text(member, labels[wire_name], name)
    if location == "querystring" and wire_name in query:
        values = query[wire_name]
        if isinstance(member, ListShape):
            return True, [_from_text(member.member, v, name) for v in values]
        return True, _from_text(member, values[-1], name)
    if location == "header" and wire_name.lower() in headers:
        return True, _from_text(member, headers[wire_name.lower()], name)
    return False, None


def extract_params(
    operation: OperationModel,
    labels: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The operation's input as one dict of member name to value, from every location.

    `headers` must be keyed in lower case. Raises SerializationException when the
    body is not a JSON object, as AWS does.
    """
    shape = operation.input_shape
    if shape is None:
        return {}
    document: Any = {}
    if body.strip():
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise AwsError("SerializationException", "the request body is not valid JSON") from None
        if not isinstance(document, dict):
            raise AwsError("SerializationException", "the request body must be a JSON object")
    params: dict[str, Any] = {}
    for name, member in shape.members.items():
        found, value = _member_value(
            name, member, document=document, labels=labels, query=query, headers=headers
        )
        if found:
            params[name] = value
    return params


def _echo(shape: Shape, value: Any) -> str:
    """The value as AWS quotes it in a validation message (never a sensitive one)."""
    if shape.metadata.get("sensitive"):
        return "Value"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > _ECHO_LIMIT:
        text = text[:_ECHO_LIMIT] + "..."
    return f"Value '{text}'"


class _Validator:
    """Collects every constraint violation of one input, in AWS's message style."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, shape: Shape, value: Any, path: str, constraint: str) -> None:
        self.errors.append(
            f"{_echo(shape, value)} at '{path}' failed to satisfy constraint: {constraint}"
        )

    def check(self, shape: Shape, value: Any, path: str) -> None:
        kind = shape.type_name
        if kind == "structure":
            self._structure(shape, value, path)
        elif kind == "list":
            self._list(shape, value, path)
        elif kind == "map":
            self._map(shape, value, path)
        elif kind == "string":
            self._string(shape, value, path)
        elif kind in ("integer", "long"):
            self._integer(shape, value, path)
        elif kind in ("float", "double"):
            self._number(shape, value, path)
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.fail(shape, value, path, "Member must be a boolean")
        elif kind == "timestamp":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                self.fail(shape, value, path, "Member must be a timestamp")
        elif kind == "blob" and not isinstance(value, str):
            self.fail(shape, value, path, "Member must be base64-encoded binary data")

    def _structure(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, dict) or not isinstance(shape, StructureShape):
            self.fail(shape, value, path, "Member must be a structure")
            return
        prefix = f"{path}." if path else ""
        for name in shape.required_members:
            if value.get(name) is None:
                self.errors.append(
                    f"Value null at '{prefix}{name}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        # Unknown members are ignored, as AWS ignores them: clients built from a
        # newer model may send members this model does not know yet.
        for name, member in shape.members.items():
            if value.get(name) is not None:
                self.check(member, value[name], f"{prefix}{name}")

    def _sized(self, shape: Shape, value: Any, path: str, size: int, what: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and size < low:
            self.fail(shape, value, path, f"Member must have {what} greater than or equal to {low}")
        if high is not None and size > high:
            self.fail(shape, value, path, f"Member must have {what} less than or equal to {high}")

    def _list(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, list) or not isinstance(shape, ListShape):
            self.fail(shape, value, path, "Member must be a list")
            return
        self._sized(shape, value, path, len(value), "length")
        for index, item in enumerate(value):
            if item is None:
                self.fail(shape.member, item, f"{path}[{index}]", "Member must not be null")
            else:
                self.check(shape.member, item, f"{path}[{index}]")

    def _map(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, dict) or not isinstance(shape, MapShape):
            self.fail(shape, value, path, "Member must be a map")
            return
        self._sized(shape, value, path, len(value), "length")
        for key, item in value.items():
            self.check(shape.key, key, f"{path}.key")
            if item is None:
                self.fail(shape.value, item, f"{path}.{key}", "Member must not be null")
            else:
                self.check(shape.value, item, f"{path}.{key}")

    def _string(self, shape: Shape, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.fail(shape, value, path, "Member must be a string")
            return
        self._sized(shape, value, path, len(value), "length")
        enum = shape.enum if isinstance(shape, StringShape) else []
        if enum and value not in enum:
            self.fail(
                shape, value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = PATTERN_OVERRIDES.get(shape.name, shape.metadata.get("pattern"))
        # AWS matches the whole value against the pattern (Coral semantics), so
        # `[a-zA-Z0-9-_]*` rejects a name with a space instead of matching "".
        if pattern is not None and re.fullmatch(pattern, value) is None:
            self.fail(
                shape, value, path, f"Member must satisfy regular expression pattern: {pattern}"
            )

    def _integer(self, shape: Shape, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(shape, value, path, "Member must be an integer")
            return
        self._range(shape, value, path)

    def _number(self, shape: Shape, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(shape, value, path, "Member must be a number")
            return
        self._range(shape, value, path)

    def _range(self, shape: Shape, value: float, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            self.fail(shape, value, path, f"Member must have value greater than or equal to {low}")
        if high is not None and value > high:
            self.fail(shape, value, path, f"Member must have value less than or equal to {high}")


def validate_input(operation: OperationModel, params: Mapping[str, Any]) -> None:
    """Raise ValidationException listing every violation of the input shape."""
    shape = operation.input_shape
    if shape is None:
        return
    validator = _Validator()
    validator.check(shape, dict(params), "")
    if validator.errors:
        count = len(validator.errors)
        noun = "error" if count == 1 else "errors"
        raise AwsError(
            "ValidationException",
            f"{count} validation {noun} detected: {'; '.join(validator.errors)}",
        )


# ---------------------------------------------------------------- response output


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, the form AWS sends for `iso8601` members."""
    moment = value.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _timestamp(shape: Shape, value: datetime) -> Any:
    # rest-json bodies default to epoch seconds; ivs-realtime asks for iso8601.
    kind = shape.serialization.get("timestampFormat", "unixTimestamp")
    if kind == "iso8601":
        return format_timestamp(value)
    if kind == "rfc822":
        return format_datetime(value.astimezone(UTC), usegmt=True)
    return value.timestamp()


def shape_output(shape: Shape | None, value: Any) -> Any:
    """`value` cut to what `shape` defines: unknown keys and None dropped, timestamps formatted."""
    if shape is None or value is None:
        return {} if shape is None else None
    if isinstance(shape, StructureShape):
        shaped: dict[str, Any] = {}
        for name, member in shape.members.items():
            if member.serialization.get("location") is not None:
                continue  # header/status members travel outside the body
            item = value.get(name)
            if item is not None:
                shaped[member.serialization.get("name", name)] = shape_output(member, item)
        return shaped
    if isinstance(shape, ListShape):
        return [shape_output(shape.member, item) for item in value]
    if isinstance(shape, MapShape):
        return {key: shape_output(shape.value, item) for key, item in value.items()}
    if shape.type_name == "timestamp" and isinstance(value, datetime):
        return _timestamp(shape, value)
    return value

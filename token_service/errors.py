"""The one error hierarchy of the domain.

Domain modules raise these; only `http/problems.py` turns them into HTTP responses,
so nothing below the HTTP edge knows about status codes. Messages must never carry
a token, a key or a secret: they reach clients and logs verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One invalid input field: `field` is a dotted path such as `attributes.displayName`."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error the service expects and knows how to report."""

    #: A short, stable, machine-readable code (the problem `type` suffix).
    code: str = "error"
    #: The human title of the problem kind.
    title: str = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(DomainError):
    """The request itself is malformed: wrong types, out of range, unknown fields."""

    code = "invalid-request"
    title = "Invalid request"

    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.errors = tuple(errors)


class UnsupportedMediaType(InvalidRequest):
    """The body is not declared as what the route reads (JSON in UTF-8)."""

    code = "unsupported-media-type"
    title = "Unsupported media type"


class AuthenticationFailed(DomainError):
    """Missing or invalid credentials. The detail says why without echoing them."""

    code = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(DomainError):
    """Authenticated, but the server-side policy refuses what was asked."""

    code = "forbidden"
    title = "Forbidden"

    def __init__(self, detail: str, rule: str | None = None) -> None:
        super().__init__(detail)
        #: Which policy rule refused (for the client and the operator).
        self.rule = rule


class NotFound(DomainError):
    code = "not-found"
    title = "Not found"


class StageNotFound(NotFound):
    code = "stage-not-found"
    title = "Stage not found"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class ChangedConcurrently(Conflict):
    """A compare-and-set write lost to other writes of the same thing, too many times: the
    request changed nothing and can simply be retried."""

    code = "changed-concurrently"
    title = "Changed concurrently"


class RateLimited(DomainError):
    code = "rate-limited"
    title = "Too many requests"

    def __init__(
        self, detail: str, retry_after: float, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        #: Informational response fields (the caller's limits), set at the HTTP edge.
        self.headers = dict(headers or {})


class UpstreamFailed(DomainError):
    """IVS answered, but not with what we needed (502)."""

    code = "upstream-failed"
    title = "IVS request failed"


class ServiceUnavailable(DomainError):
    """A dependency (IVS, Redis, the key ring) cannot serve now (503)."""

    code = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class UpstreamTimeout(ServiceUnavailable):
    code = "upstream-timeout"
    title = "IVS did not answer in time"


class ConfigurationError(DomainError):
    """Start-up configuration is invalid; every problem is listed at once."""

    code = "configuration"
    title = "Invalid configuration"

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)

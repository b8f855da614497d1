"""The one error type the emulator answers with: an AWS error code and message.

Raised anywhere on the request path; `service.py` renders it the way the real
service does (status, `x-amzn-ErrorType`, JSON `message`), so botocore raises a
`ClientError` carrying the same `Error.Code` it would get from AWS.
"""

from __future__ import annotations

#: Statuses of the errors that the model does not define as shapes but that AWS
#: (or its front door) answers with. The model's own error shapes carry theirs.
UNMODELED_STATUS: dict[str, int] = {
    "ThrottlingException": 429,
    "SerializationException": 400,
    "MissingAuthenticationTokenException": 403,
    "IncompleteSignatureException": 403,
    "InvalidSignatureException": 403,
    "UnknownOperationException": 404,
    "NotImplementedException": 501,
}


class AwsError(Exception):
    """An AWS-style error: `code` becomes botocore's `Error.Code`."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: None: the status of the model's error shape of that name (see `model.py`).
        self.status = status


def validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def not_found(message: str) -> AwsError:
    return AwsError("ResourceNotFoundException", message)


def conflict(message: str) -> AwsError:
    return AwsError("ConflictException", message)


def quota_exceeded(message: str) -> AwsError:
    return AwsError("ServiceQuotaExceededException", message)


def throttled(message: str) -> AwsError:
    return AwsError("ThrottlingException", message)

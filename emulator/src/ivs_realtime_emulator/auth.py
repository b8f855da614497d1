"""SigV4 as the emulator checks it: present, well formed, scoped to `ivs`; never verified.

Any access key is accepted and the signature is not recomputed (the emulator has
no secrets to check it against), but a request must carry what a real SigV4
request carries, and the credential scope decides the region whose state the
request sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ivs_realtime_emulator.errors import AwsError

SIGNING_NAME = "ivs"
_ALGORITHM = "AWS4-HMAC-SHA256"
# What ARNs allow as a region: real regions and made-up local ones alike.
_REGION = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_DATE = re.compile(r"[0-9]{8}")


def _incomplete(message: str) -> AwsError:
    return AwsError("IncompleteSignatureException", message)


def region_of_request(headers: Mapping[str, str]) -> str:
    """The region of the request's credential scope; `headers` keyed in lower case."""
    authorization = headers.get("authorization")
    if not authorization:
        raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != _ALGORITHM:
        raise _incomplete(f"Authorization header must use {_ALGORITHM} (SigV4)")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, separator, value = part.strip().partition("=")
        if separator:
            fields[key] = value
    missing = [key for key in ("Credential", "SignedHeaders", "Signature") if not fields.get(key)]
    if missing:
        raise _incomplete(f"Authorization header requires {', '.join(missing)}")
    if "x-amz-date" not in headers and "date" not in headers:
        raise _incomplete("Authorization header requires existence of either X-Amz-Date or Date")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or not scope[0] or scope[4] != "aws4_request":
        raise _incomplete("Credential must be <key>/<date>/<region>/<service>/aws4_request")
    _key, date, region, service, _terminator = scope
    if _DATE.fullmatch(date) is None:
        raise _incomplete("the credential scope's date must be YYYYMMDD")
    if service != SIGNING_NAME:
        raise AwsError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SIGNING_NAME}'.",
        )
    if _REGION.fullmatch(region) is None:
        raise AwsError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region: {region!r}",
        )
    return region

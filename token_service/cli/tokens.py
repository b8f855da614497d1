"""`token-service participant-token`: an operator mints a participant token (a test, an
incident), recorded in the mapping log like any other.

Only the token goes to stdout (`TOKEN=$(token-service participant-token ...)`), or with
`--json` the answer of `POST /v1/participant-tokens`. Errors go to stderr naming the flag:
the request is checked by the HTTP route's and the policy's own checks, whose messages
name the body's fields, and those names are turned into this command's flags.
"""

from __future__ import annotations

import argparse
import json
import re

from token_service import package_version
from token_service.bootstrap.features import build_user_naming
from token_service.bootstrap.tokens import check_token_request, operator_token_desk, token_answer
from token_service.config import Settings
from token_service.domain import AppUser, Capability, TokenRequest
from token_service.errors import (
    DomainError,
    FieldError,
    InvalidRequest,
    PermissionDenied,
    StageNotFound,
)
from token_service.ivs.stages import STAGE_ACCOUNT_RULE, STAGE_REGION_RULE
from token_service.keys.admin import cli_actor
from token_service.mapping.records import ANY_ISSUER
from token_service.policy import IVS_USER_ID_LIMIT
from token_service.tokens.desk import Caller

#: The request body's field names (as the route's and the policy's errors say them), and
#: the flag each comes from.
_FLAGS = {
    "stageArn": "--stage-arn",
    "durationMinutes": "--duration",
    "capabilities": "--publish/--subscribe",
    "attributes": "--attribute",
}
#: The stage refusals of `ivs.stages.StageDirectory.check_served`.
_STAGE_RULES = frozenset({STAGE_REGION_RULE, STAGE_ACCOUNT_RULE})
#: A field name, or a message starting with one: the body's field, its path in it (`.room`
#: for the attribute `room`, `[...]` for some attribute's value), then the rest.
_LEADING_FIELD = re.compile(
    r"^(?P<name>[A-Za-z]+)(?:\.(?P<key>[^:]*)|\[\.\.\.\])?(?P<rest>[:\s].*)?$", re.DOTALL
)


def _flagged(text: str) -> str:
    """A field name, or a message that starts with one, with the flag instead: `stageArn`
    as `--stage-arn`, `attributes.room: ...` as `--attribute room: ...`."""
    match = _LEADING_FIELD.match(text)
    if match is None or match["name"] not in _FLAGS:
        return text
    flag = _FLAGS[match["name"]]
    if match["key"] is not None:
        flag = f"{flag} {match['key']}"
    return flag + (match["rest"] or "")


def _for_the_shell(exc: DomainError) -> DomainError:
    """The error as this command's flags name what was wrong."""
    if isinstance(exc, InvalidRequest):
        return InvalidRequest(
            _flagged(exc.detail), [FieldError(_flagged(e.field), e.message) for e in exc.errors]
        )
    if isinstance(exc, StageNotFound):
        return StageNotFound(f"--stage-arn: {exc.detail}")
    if isinstance(exc, PermissionDenied):
        if exc.rule in _STAGE_RULES:
            return PermissionDenied(f"--stage-arn: {exc.detail}", rule=exc.rule)
        if exc.rule == IVS_USER_ID_LIMIT:
            return PermissionDenied(f"--user-id: {exc.detail}", rule=exc.rule)
        return PermissionDenied(_flagged(exc.detail), rule=exc.rule)
    return exc


def token_request(args: argparse.Namespace) -> TokenRequest:
    """The request the flags make: neither --publish nor --subscribe means both (as IVS's
    own default); an attribute given twice is refused, as a repeated JSON key is."""
    attributes: dict[str, str] = {}
    for key, value in args.attribute:
        if key in attributes:
            raise InvalidRequest(
                f"--attribute {key}: given twice", [FieldError(f"--attribute {key}", "given twice")]
            )
        attributes[key] = value
    chosen = {Capability.PUBLISH} if args.publish else set()
    chosen |= {Capability.SUBSCRIBE} if args.subscribe else set()
    return TokenRequest(
        stage_arn=args.stage_arn,
        capabilities=frozenset(chosen) or None,
        duration_minutes=args.duration,
        attributes=attributes,
    )


def operator_caller(settings: Settings, args: argparse.Namespace) -> Caller:
    """The app user the token is for, and the command as the origin the record keeps."""
    issuer = build_user_naming(settings).issuer(
        args.user_id, args.issuer, user_field="--user-id", issuer_field="--issuer"
    )
    if issuer == ANY_ISSUER:
        raise InvalidRequest(
            "--issuer: a token is one user's",
            [FieldError("--issuer", f"the user's issuer, or '' for none; not {ANY_ISSUER!r}")],
        )
    return Caller(
        user=AppUser(user_id=args.user_id, roles=frozenset(), issuer=issuer),
        # No rate limit counts an operator's token: the subject names no client.
        ip_subject="cli",
        # The record's origin: this command and who ran it, where an app's request keeps
        # its User-Agent (`participants show` prints it).
        user_agent=f"token-service/{package_version()} participant-token ({cli_actor()})",
    )


async def run_participant_token(settings: Settings, args: argparse.Namespace) -> int:
    try:
        request = token_request(args)
        caller = operator_caller(settings, args)
        check_token_request(settings, caller.user, request)
        async with operator_token_desk(settings) as desk:
            outcome = await desk.issue(caller, request)
    except DomainError as exc:
        raise _for_the_shell(exc) from None
    if args.json:
        print(json.dumps(token_answer(outcome.token), indent=2))
    else:
        # The token alone, so `$(token-service participant-token ...)` is the token.
        print(outcome.token.token)
    return 0

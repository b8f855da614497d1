"""Admin routes of the mapping log: look participants up, disconnect them, ban users."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from token_service.domain import iso_utc
from token_service.errors import FieldError, InvalidRequest, NotFound
from token_service.http.examples import STAGE_ARN
from token_service.http.guards import ADMIN_STATE_KEY, require_admin
from token_service.http.openapi import BanIdPath, ParticipantIdPath, problems
from token_service.http.schemas import (
    NO_CONTROL_CHARACTERS,
    STAGE_ARN_PATTERN,
    BanBody,
    BanCreatedBody,
    BanDetailBody,
    BanList,
    BanParticipantBody,
    BanRequestBody,
    BanStatusBody,
    DisconnectBody,
    DisconnectResultBody,
    DisconnectsBody,
)
from token_service.http.services import Services
from token_service.http.strict_body import strict_json
from token_service.ivs.stages import parse_stage_arn
from token_service.mapping.disconnects import Tally
from token_service.mapping.moderation import BanStatus, DisconnectResult
from token_service.mapping.records import Ban, Page
from token_service.mapping.views import ParticipantPage, ParticipantRecordBody, participant_body

#: `GET /admin/stages/{stageArn}/participants` is deprecated since this date, RFC 9745's
#: `Deprecation` field (a structured date, `@` and epoch seconds): 2026-12-06T00:00:00Z.
DEPRECATION = "@1796515200"
PageSize = Annotated[int, QueryParameter(ge=1, le=500, description="records per page")]
Cursor = Annotated[
    str | None, QueryParameter(max_length=100, description="`nextCursor` of the previous page")
]
Since = Annotated[
    str | None,
    QueryParameter(description="RFC 3339 date-time", schema_extra={"format": "date-time"}),
]


def _page(page: Page) -> ParticipantPage:
    return ParticipantPage(
        participants=[participant_body(v) for v in page.items], next_cursor=page.next_cursor
    )


def _disconnect_body(result: DisconnectResult) -> DisconnectResultBody:
    return DisconnectResultBody(
        participant=participant_body(result.participant), ivs_result=result.ivs_result
    )


def ban_body(ban: Ban) -> BanBody:
    return BanBody(
        id=ban.id,
        user_id=ban.user_id,
        issuer=ban.issuer,
        stage_arn=ban.stage_arn,
        until=iso_utc(ban.until) if ban.until is not None else None,
        reason=ban.reason,
        created_at=iso_utc(ban.created_at),
        created_by=ban.created_by,
    )


def disconnects_body(tally: Tally) -> DisconnectsBody:
    return DisconnectsBody(
        status=tally.status,
        total=tally.total,
        pending=tally.pending,
        disconnected=tally.disconnected,
        not_connected=tally.not_connected,
        failed=tally.failed,
        cancelled=tally.cancelled,
    )


def _ban_status_body(status: BanStatus) -> BanStatusBody:
    ban = ban_body(status.ban)
    return BanStatusBody(
        **msgspec.structs.asdict(ban),
        disconnects=None if status.disconnects is None else disconnects_body(status.disconnects),
    )


#: RFC 3339 date-time (the OpenAPI `date-time` format): date, time and offset all required.
_DATE_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)


#: 9999-12-31T23:59:59Z, the last time `_iso` can show.
_LAST_SECOND = 253402300799


def _parse_time(text: str, field: str) -> int:
    """An RFC 3339 date-time as epoch seconds; anything else (an empty string too) is a 400."""
    refused = InvalidRequest(
        f"{field} is not an RFC 3339 date-time",
        [FieldError(field, "expected e.g. 2026-12-01T00:00:00Z")],
    )
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise refused
    offset = "+00:00" if match["offset"] in {"Z", "z"} else match["offset"]
    try:
        value = datetime.fromisoformat(f"{match['date']}T{match['time']}{offset}")
        return int(value.timestamp())
    except (ValueError, OverflowError):
        raise refused from None


async def _stage_page(
    services: Services, stage_arn: str, since: str | None, limit: int, cursor: str | None
) -> ParticipantPage:
    parse_stage_arn(stage_arn)
    since_seconds = _parse_time(since, "since") if since is not None else None
    page = await services.mapping.by_stage(
        stage_arn, since=since_seconds, limit=limit, cursor=cursor
    )
    return _page(page)


def _admin(request: Request[Any, Any, Any]) -> str:
    admin: str = request.state[ADMIN_STATE_KEY]
    return admin


class AdminParticipantsController(Controller):
    path = "/admin"
    guards = [require_admin]  # noqa: RUF012 - Litestar reads this class attribute
    tags = ["admin"]  # noqa: RUF012 - Litestar reads this class attribute
    security = [{"adminToken": []}]  # noqa: RUF012 - Litestar reads this class attribute

    @get(
        "/participants/{participantId:str}",
        operation_id="getParticipant",
        summary="The mapping record of a participant",
        responses=problems(400, 401, 404, 429, 503),
    )
    async def participant(
        self, services: NamedDependency[Services], participant_id: ParticipantIdPath
    ) -> ParticipantRecordBody:
        view = await services.mapping.get(participant_id)
        if view is None:
            raise NotFound(f"no mapping record for participant {participant_id}")
        return participant_body(view)

    @get(
        "/users/{userId:str}/participants",
        operation_id="listUserParticipants",
        summary="Every participant issued to an app user, newest first",
        description=(
            "An app user is (issuer, user id): `issuer` says whose user id it is (empty: "
            "tokens without one; `*`: every issuer). Left out, every issuer, unless a shared "
            "secret and OIDC are both accepted: then it is required (400)."
        ),
        responses=problems(400, 401, 429, 503),
    )
    async def of_user(
        self,
        services: NamedDependency[Services],
        user_id: Annotated[
            str,
            PathParameter(
                name="userId",
                description="the app user id (with `issuer`, the app user)",
                schema_extra={"pattern": NO_CONTROL_CHARACTERS},
            ),
        ],
        issuer: Annotated[
            str | None,
            QueryParameter(
                max_length=1024, description="the user's issuer; empty: none; `*`: every issuer"
            ),
        ] = None,
        limit: PageSize = 50,
        cursor: Cursor = None,
    ) -> ParticipantPage:
        meant = services.user_naming.issuer(user_id, msgspec.UNSET if issuer is None else issuer)
        page = await services.mapping.by_user(user_id, issuer=meant, limit=limit, cursor=cursor)
        return _page(page)

    @get(
        "/participants",
        operation_id="listStageParticipants",
        summary="Participants issued for a stage, newest first",
        responses=problems(400, 401, 429, 503),
    )
    async def of_stage(
        self,
        services: NamedDependency[Services],
        stage_arn: Annotated[
            str,
            QueryParameter(
                name="stageArn",
                description="the stage ARN",
                schema_extra={"pattern": STAGE_ARN_PATTERN},
                examples=[Example(value=STAGE_ARN)],
            ),
        ],
        since: Since = None,
        limit: PageSize = 50,
        cursor: Cursor = None,
    ) -> ParticipantPage:
        return await _stage_page(services, stage_arn, since, limit, cursor)

    @get(
        "/stages/{rest:path}",
        operation_id="listStageParticipantsDeprecated",
        # The former URL, kept for one release: a stage ARN holds a `/`, so it needed a
        # catch-all path that no client generator maps to a function (issue 22).
        include_in_schema=False,
    )
    async def of_stage_deprecated(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        rest: FromPath[str],
        *,
        since: Since = None,
        limit: PageSize = 50,
        cursor: Cursor = None,
    ) -> Response[ParticipantPage]:
        if not rest.endswith("/participants"):
            raise NotFound("expected /admin/stages/{stageArn}/participants")
        stage_arn = rest.lstrip("/").removesuffix("/participants")
        page = await _stage_page(services, stage_arn, since, limit, cursor)
        # Re-encoded from the parsed query, so nothing of the request reaches the header raw;
        # the path's stage ARN is the successor's `stageArn`, never a second one.
        query = [item for item in request.query_params.multi_items() if item[0] != "stageArn"]
        successor = "/admin/participants?" + urlencode([("stageArn", stage_arn), *query])
        return Response(
            page,
            headers={
                "Deprecation": DEPRECATION,
                "Link": f'<{successor}>; rel="successor-version"',
            },
        )

    @post(
        "/participants/{participantId:str}/disconnect",
        operation_id="disconnectParticipant",
        status_code=200,
        summary="DisconnectParticipant on its stage; the record keeps who did it, when and why",
        responses=problems(400, 401, 404, 413, 415, 429, 502, 503),
        before_request=strict_json(DisconnectBody, optional=True),
    )
    async def disconnect(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        participant_id: ParticipantIdPath,
        data: JSONBody[DisconnectBody | None] = None,
    ) -> DisconnectResultBody:
        reason = data.reason if data is not None else "disconnected by operator"
        result = await services.moderation.disconnect(
            participant_id, by=_admin(request), reason=reason
        )
        return _disconnect_body(result)

    @post(
        "/bans",
        operation_id="createBan",
        status_code=201,
        summary="Ban an app user, everywhere or on one stage; disconnect their live participants",
        description=(
            "Answers at once: 201 with the ban and its disconnects, which go on in the "
            "background within IVS's DisconnectParticipant rate (follow them with "
            "`GET /admin/bans/{banId}`). While an equal ban (same user, issuer, stage and "
            "`until`) is in force, 200 with that ban instead: a retried request stores no "
            "second one."
        ),
        responses={
            200: ResponseSpec(
                data_container=BanCreatedBody,
                description="An equal ban was in force already: that ban, nothing stored",
            ),
            **problems(400, 401, 413, 415, 429, 503),
        },
        before_request=strict_json(BanRequestBody),
    )
    async def ban(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        data: JSONBody[BanRequestBody],
    ) -> Response[BanCreatedBody]:
        until = _parse_time(data.until, "until") if data.until is not None else None
        if until is not None and until > _LAST_SECOND:
            # The ban is shown back in UTC, which has no year 10000.
            raise InvalidRequest(
                "until is after 9999-12-31T23:59:59Z", [FieldError("until", "too far ahead")]
            )
        if data.stage_arn is not None:
            parse_stage_arn(data.stage_arn)
        issuer = services.user_naming.issuer(data.user_id, data.issuer)
        result = await services.moderation.ban(
            user_id=data.user_id,
            issuer=issuer,
            stage_arn=data.stage_arn,
            until=until,
            reason=data.reason,
            by=_admin(request),
        )
        body = BanCreatedBody(
            ban=ban_body(result.ban), disconnects=disconnects_body(result.disconnects)
        )
        return Response(body, status_code=201 if result.created else 200)

    @get(
        "/bans",
        operation_id="listBans",
        summary="Bans in force, each with its disconnects so far",
        responses=problems(401, 429, 503),
    )
    async def bans(self, services: NamedDependency[Services]) -> BanList:
        return BanList(bans=[_ban_status_body(b) for b in await services.moderation.bans()])

    @get(
        "/bans/{banId:str}",
        operation_id="getBan",
        summary="A ban in force, its disconnects so far and what became of each participant",
        responses=problems(400, 401, 404, 429, 503),
    )
    async def ban_status(
        self, services: NamedDependency[Services], ban_id: BanIdPath
    ) -> BanDetailBody:
        status, outcomes = await services.moderation.ban_status(ban_id)
        return BanDetailBody(
            ban=ban_body(status.ban),
            disconnects=(
                None if status.disconnects is None else disconnects_body(status.disconnects)
            ),
            participants=[
                BanParticipantBody(participant_id=pid, result=result)
                for pid, result in sorted(outcomes.items())
            ],
        )

    @delete(
        "/bans/{banId:str}",
        operation_id="liftBan",
        status_code=200,
        summary="Lift a ban",
        responses=problems(400, 401, 404, 429, 503),
    )
    async def lift(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        ban_id: BanIdPath,
    ) -> BanBody:
        return ban_body(await services.moderation.lift(ban_id, by=_admin(request)))

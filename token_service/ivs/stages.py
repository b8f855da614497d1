"""Stage resolution: ARN checks, and the stage endpoints a self-signed token carries.

A self-signed token must carry the stage's `events` and `whip` endpoints verbatim,
which only GetStage tells (limited to 5 TPS per account). So endpoints are cached
in the shared cache for hours (never over the 14 days AWS allows), unknown stages
are cached briefly so a flood of bad ARNs cannot exhaust that quota, and concurrent
misses for one ARN share a single GetStage call.
"""

from __future__ import annotations

import asyncio
import json
from typing import Protocol

from token_service.domain import StageArn
from token_service.errors import FieldError, InvalidRequest, PermissionDenied, StageNotFound
from token_service.infra.cache import Cache
from token_service.ivs.client import StageInfo

_NOT_FOUND = b"\x00missing"
#: The `rule` of a refusal of a stage outside this service's region, or account.
STAGE_REGION_RULE = "service: stage region"
STAGE_ACCOUNT_RULE = "service: stage account"
#: AWS allows stage endpoints to be cached for up to 14 days.
ENDPOINT_CACHE_MAX_SECONDS = 14 * 24 * 3600


def parse_stage_arn(arn: str, field: str = "stageArn") -> StageArn:
    """The stage ARN of a request, or a 400 naming `field`."""
    try:
        return StageArn.parse(arn)
    except ValueError as exc:
        raise InvalidRequest("stageArn is not a stage ARN", [FieldError(field, str(exc))]) from None


class StageLookup(Protocol):
    async def get_stage(self, arn: str) -> StageInfo: ...


class StageDirectory:
    """Answers "which endpoints does this stage have", from cache or from IVS."""

    def __init__(
        self,
        ivs: StageLookup,
        cache: Cache,
        *,
        region: str,
        account_id: str | None,
        ttl_seconds: int,
        not_found_ttl_seconds: int,
    ) -> None:
        self._ivs = ivs
        self._cache = cache
        self._region = region
        self._account_id = account_id
        self._ttl = min(ttl_seconds, ENDPOINT_CACHE_MAX_SECONDS)
        self._not_found_ttl = not_found_ttl_seconds
        self._inflight: dict[str, asyncio.Future[StageInfo]] = {}

    def check_served(self, arn: str) -> StageArn:
        """Parse the ARN and refuse stages outside this service's region or account."""
        parsed = parse_stage_arn(arn)
        if parsed.region != self._region:
            raise PermissionDenied(
                f"this service issues tokens for stages in {self._region}, not {parsed.region}",
                rule=STAGE_REGION_RULE,
            )
        if self._account_id is not None and parsed.account != self._account_id:
            raise PermissionDenied(
                "this service does not issue tokens for stages of that AWS account",
                rule=STAGE_ACCOUNT_RULE,
            )
        return parsed

    async def cached(self, arn: str) -> StageInfo | None:
        """The stage as cached, without calling IVS: None when only GetStage can tell.

        Raises `StageNotFound` for a stage IVS recently said does not exist, and refuses
        stages this service does not serve, so a request can be answered before it is
        admitted only when answering costs no IVS call.
        """
        self.check_served(arn)
        cached = await self._cache.get("stage:" + arn)
        if cached == _NOT_FOUND:
            raise StageNotFound(f"stage {arn} does not exist")
        if cached is None:
            return None
        data = json.loads(cached)
        return StageInfo(arn, data["id"], data["events"], data["whip"])

    async def resolve(self, arn: str) -> StageInfo:
        """The stage from the cache, else from GetStage (paced by the lookup budget)."""
        known = await self.cached(arn)
        if known is not None:
            return known
        pending = self._inflight.get(arn)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[StageInfo] = asyncio.get_running_loop().create_future()
        self._inflight[arn] = future
        try:
            stage = await self._fetch(arn)
        except BaseException as exc:
            future.set_exception(exc)
            # Mark retrieved: waiters may be none, and an unread exception would be logged.
            future.exception()
            raise
        else:
            future.set_result(stage)
            return stage
        finally:
            del self._inflight[arn]

    async def _fetch(self, arn: str) -> StageInfo:
        try:
            stage = await self._ivs.get_stage(arn)
        except StageNotFound:
            if self._not_found_ttl > 0:
                await self._cache.set("stage:" + arn, _NOT_FOUND, self._not_found_ttl)
            raise
        payload = {"id": stage.stage_id, "events": stage.events_url, "whip": stage.whip_url}
        await self._cache.set("stage:" + arn, json.dumps(payload).encode(), self._ttl)
        return stage

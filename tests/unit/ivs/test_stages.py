"""Stage ARNs: parsed strictly, and only the service's region and account are served."""

from __future__ import annotations

import pytest

from token_service.errors import InvalidRequest, PermissionDenied
from token_service.infra.cache import MemoryCache
from token_service.ivs.client import StageInfo
from token_service.ivs.stages import StageDirectory, parse_stage_arn

ARN = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"


class _NoIvs:
    async def get_stage(self, arn: str) -> StageInfo:
        raise AssertionError("not reached in these tests")


def _directory(account: str | None = None) -> StageDirectory:
    return StageDirectory(
        _NoIvs(),
        MemoryCache(),
        region="us-east-1",
        account_id=account,
        ttl_seconds=60,
        not_found_ttl_seconds=5,
    )


def test_stage_arn_parts_are_parsed() -> None:
    parsed = parse_stage_arn(ARN)
    assert (parsed.region, parsed.account, parsed.stage_id) == (
        "us-east-1",
        "123456789012",
        "AbCdEf123456",
    )


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEf123456",
        "arn:aws:ivs:us-east-1:1234:stage/AbCdEf123456",
        "arn:aws:ivs:us-east-1:123456789012:stage/",
        "arn:aws:ivs:us-east-1:123456789012:stage/Ab/Cd",
        "not an arn",
    ],
)
def test_malformed_stage_arn_is_an_invalid_request_naming_the_field(arn: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_stage_arn(arn)
    assert info.value.errors[0].field == "stageArn"


def test_stage_in_another_region_is_refused() -> None:
    with pytest.raises(PermissionDenied, match="us-east-1"):
        _directory().check_served(ARN.replace("us-east-1", "eu-west-1"))


def test_stage_of_another_account_is_refused_when_an_account_is_configured() -> None:
    _directory().check_served(ARN)
    with pytest.raises(PermissionDenied, match="account"):
        _directory(account="999999999999").check_served(ARN)


async def test_an_uncached_stage_is_not_looked_up_before_admission() -> None:
    """`cached` answers without IVS (`_NoIvs` fails if called): None means "ask later"."""
    assert await _directory().cached(ARN) is None


async def test_a_stage_in_another_region_is_refused_before_admission_too() -> None:
    with pytest.raises(PermissionDenied):
        await _directory().cached(ARN.replace("us-east-1", "eu-west-1"))

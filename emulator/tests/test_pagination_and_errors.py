"""Fidelity: nextToken is bound to its request; list operations answer only modeled errors."""

from __future__ import annotations

import pytest

from tests.helpers import new_p384_key, public_pem

UNKNOWN_STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"


@pytest.fixture
def stages_token(ivs_client) -> str:
    for index in range(3):
        ivs_client.create_stage(name=f"s{index}")
    return str(ivs_client.list_stages(maxResults=1)["nextToken"])


def test_a_stages_token_pages_list_stages(ivs_client, stages_token) -> None:
    listed = ivs_client.list_stages(maxResults=1, nextToken=stages_token)

    assert [s["name"] for s in listed["stages"]] == ["s1"]


def test_a_token_of_another_operation_is_rejected(ivs_client, stages_token) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException, match="nextToken"):
        ivs_client.list_public_keys(nextToken=stages_token)


def test_a_token_of_another_region_is_rejected(make_client, stages_token) -> None:
    west = make_client("us-west-2")
    with pytest.raises(west.exceptions.ValidationException, match="nextToken"):
        west.list_stages(nextToken=stages_token)


def test_a_token_with_changed_filters_is_rejected(ivs_client) -> None:
    for _ in range(2):
        ivs_client.create_ingest_configuration(ingestProtocol="RTMPS")
    token = ivs_client.list_ingest_configurations(maxResults=1)["nextToken"]

    with pytest.raises(ivs_client.exceptions.ValidationException, match="nextToken"):
        ivs_client.list_ingest_configurations(filterByState="INACTIVE", nextToken=token)


def test_a_token_with_another_page_size_still_pages(ivs_client, stages_token) -> None:
    listed = ivs_client.list_stages(maxResults=5, nextToken=stages_token)

    assert [s["name"] for s in listed["stages"]] == ["s1", "s2"]


def test_a_token_that_is_no_token_is_rejected(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException, match="nextToken"):
        ivs_client.list_stages(nextToken="garbage")


def test_boto3_paginator_still_walks_every_page(ivs_client) -> None:
    for index in range(3):
        pem = public_pem(new_p384_key())
        ivs_client.import_public_key(publicKeyMaterial=pem, name=f"k{index}")

    pages = ivs_client.get_paginator("list_public_keys").paginate(PaginationConfig={"PageSize": 1})

    assert [k["name"] for page in pages for k in page["publicKeys"]] == ["k0", "k1", "k2"]


def test_list_stage_sessions_of_an_unknown_stage_is_empty(ivs_client) -> None:
    # ListStageSessions models only ValidationException and AccessDeniedException.
    assert ivs_client.list_stage_sessions(stageArn=UNKNOWN_STAGE)["stageSessions"] == []


def test_list_participants_of_an_unknown_stage_is_empty(ivs_client) -> None:
    # ListParticipants models only ValidationException and AccessDeniedException.
    listed = ivs_client.list_participants(stageArn=UNKNOWN_STAGE, sessionId="st-AAAAAAAAAAAAA")

    assert listed["participants"] == []

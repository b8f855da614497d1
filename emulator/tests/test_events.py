"""ListParticipantEvents: the events the emulator's join, exchange, ingest, replication and
disconnect paths record for a participant of a session."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import join, self_signed


@pytest.fixture
def session_id(emulator, ivs_client, stage, private_key, key_arn) -> str:
    assert join(emulator.url, self_signed(private_key, key_arn, stage)).status_code == 200
    return str(ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"])


def _events(client, stage_arn: str, session_id: str, participant_id: str = "participant1"):
    return client.list_participant_events(
        stageArn=stage_arn, sessionId=session_id, participantId=participant_id
    )["events"]


def test_join_records_joined(ivs_client, stage, session_id) -> None:
    (event,) = _events(ivs_client, stage["arn"], session_id)

    assert event["name"] == "JOINED"
    assert event["participantId"] == "participant1"
    assert event["eventTime"].tzinfo is not None
    assert event["replica"] is False


def test_disconnect_records_left(ivs_client, stage, session_id) -> None:
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    names = [e["name"] for e in _events(ivs_client, stage["arn"], session_id)]
    assert names == ["JOINED", "LEFT"]


def test_events_are_in_the_order_they_happened(ivs_client, stage, session_id) -> None:
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    times = [e["eventTime"] for e in _events(ivs_client, stage["arn"], session_id)]
    assert times == sorted(times)


def test_exchange_records_token_exchanged_with_both_tokens(
    emulator, ivs_client, stage, session_id, private_key, key_arn
) -> None:
    new = self_signed(private_key, key_arn, stage, user_id="user-2", attributes={"a": "b"})
    assert httpx.post(f"{emulator.url}/_emulator/exchange", json={"token": new}).status_code == 200

    event = _events(ivs_client, stage["arn"], session_id)[-1]
    assert event["name"] == "TOKEN_EXCHANGED"
    assert event["previousToken"]["userId"] == "user-1"
    assert event["previousToken"]["attributes"] == {"displayName": "Sam"}
    assert event["newToken"]["userId"] == "user-2"
    assert event["newToken"]["attributes"] == {"a": "b"}
    assert set(event["newToken"]["capabilities"]) == {"PUBLISH", "SUBSCRIBE"}
    assert event["newToken"]["expirationTime"].tzinfo is not None


def test_replication_records_started_and_stopped_on_the_source(
    ivs_client, stage, session_id
) -> None:
    destination = ivs_client.create_stage(name="dest")["stage"]
    arns = {
        "sourceStageArn": stage["arn"],
        "destinationStageArn": destination["arn"],
        "participantId": "participant1",
    }
    ivs_client.start_participant_replication(**arns)
    ivs_client.stop_participant_replication(**arns)
    destination_session = ivs_client.list_stage_sessions(stageArn=destination["arn"])[
        "stageSessions"
    ][0]["sessionId"]

    events = _events(ivs_client, stage["arn"], session_id)
    assert [e["name"] for e in events] == ["JOINED", "REPLICATION_STARTED", "REPLICATION_STOPPED"]
    assert events[1]["destinationStageArn"] == destination["arn"]
    assert events[1]["destinationSessionId"] == destination_session
    replica_events = _events(ivs_client, destination["arn"], destination_session)
    assert [(e["name"], e["replica"]) for e in replica_events] == [
        ("JOINED", True),
        ("LEFT", True),
    ]


def test_ingest_records_publish_started_and_stopped(emulator, ivs_client, stage) -> None:
    config = ivs_client.create_ingest_configuration(ingestProtocol="RTMPS", stageArn=stage["arn"])[
        "ingestConfiguration"
    ]
    url = f"{emulator.url}/_emulator/ingest"
    httpx.post(url, json={"streamKey": config["streamKey"], "action": "start"})
    httpx.post(url, json={"streamKey": config["streamKey"], "action": "stop"})
    session_id = ivs_client.list_stage_sessions(stageArn=stage["arn"])["stageSessions"][0][
        "sessionId"
    ]

    names = [
        e["name"] for e in _events(ivs_client, stage["arn"], session_id, config["participantId"])
    ]
    assert names == ["JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT"]


def test_deleting_the_stage_records_left(ivs_client, stage, session_id) -> None:
    ivs_client.delete_stage(arn=stage["arn"])

    # The stage is gone, so its events are too: the model lists no ResourceNotFoundException.
    assert _events(ivs_client, stage["arn"], session_id) == []


def test_events_of_an_unknown_participant_are_empty(ivs_client, stage, session_id) -> None:
    assert _events(ivs_client, stage["arn"], session_id, "nobody") == []


def test_events_of_an_unknown_stage_are_empty(ivs_client) -> None:
    unknown = "arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"
    assert _events(ivs_client, unknown, "st-AAAAAAAAAAAAA") == []


def test_events_page(emulator, ivs_client, stage, session_id, private_key, key_arn) -> None:
    token = self_signed(private_key, key_arn, stage)
    for _ in range(2):
        httpx.post(f"{emulator.url}/_emulator/exchange", json={"token": token})
    params = {"stageArn": stage["arn"], "sessionId": session_id, "participantId": "participant1"}

    first = ivs_client.list_participant_events(maxResults=2, **params)
    second = ivs_client.list_participant_events(nextToken=first["nextToken"], **params)

    assert [e["name"] for e in first["events"]] == ["JOINED", "TOKEN_EXCHANGED"]
    assert [e["name"] for e in second["events"]] == ["TOKEN_EXCHANGED"]
    assert "nextToken" not in second


def test_max_results_100_is_accepted_and_101_rejected(
    ivs_client, loose_client, stage, session_id
) -> None:
    params = {"stageArn": stage["arn"], "sessionId": session_id, "participantId": "participant1"}
    ivs_client.list_participant_events(maxResults=100, **params)

    with pytest.raises(loose_client.exceptions.ValidationException, match="maxResults"):
        loose_client.list_participant_events(maxResults=101, **params)

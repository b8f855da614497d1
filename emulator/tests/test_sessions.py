"""Stage sessions and participants: joins open sessions; list, get and disconnect them."""

from __future__ import annotations

import re

import pytest

from tests.helpers import join, self_signed


@pytest.fixture
def joined(emulator, ivs_client, stage, private_key, key_arn) -> dict:
    """`stage` after participant `participant1` (user `user-1`) joined: its session ID."""
    response = join(emulator.url, self_signed(private_key, key_arn, stage))
    assert response.status_code == 200
    return {"session_id": ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"]}


def test_stage_has_no_session_before_anyone_joins(ivs_client, stage) -> None:
    assert "activeSessionId" not in ivs_client.get_stage(arn=stage["arn"])["stage"]
    assert ivs_client.list_stage_sessions(stageArn=stage["arn"])["stageSessions"] == []


def test_first_join_starts_a_session(ivs_client, stage, joined) -> None:
    session_id = joined["session_id"]

    assert re.fullmatch(r"st-[A-Za-z0-9]{13}", session_id)
    sessions = ivs_client.list_stage_sessions(stageArn=stage["arn"])["stageSessions"]
    assert [s["sessionId"] for s in sessions] == [session_id]
    assert "endTime" not in sessions[0]


def test_get_stage_session_returns_its_start_time(ivs_client, stage, joined) -> None:
    session = ivs_client.get_stage_session(stageArn=stage["arn"], sessionId=joined["session_id"])[
        "stageSession"
    ]

    assert session["sessionId"] == joined["session_id"]
    assert session["startTime"].tzinfo is not None


def test_get_unknown_stage_session_is_not_found(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_stage_session(stageArn=stage["arn"], sessionId="st-AAAAAAAAAAAAA")


def test_a_second_join_uses_the_same_session(
    emulator, ivs_client, stage, private_key, key_arn, joined
) -> None:
    join(emulator.url, self_signed(private_key, key_arn, stage, jti="participant2"))

    sessions = ivs_client.list_stage_sessions(stageArn=stage["arn"])["stageSessions"]
    assert len(sessions) == 1


def test_list_participants_shows_the_joined_participant(ivs_client, stage, joined) -> None:
    participants = ivs_client.list_participants(
        stageArn=stage["arn"], sessionId=joined["session_id"]
    )["participants"]

    assert len(participants) == 1
    assert participants[0]["participantId"] == "participant1"
    assert participants[0]["userId"] == "user-1"
    assert participants[0]["state"] == "CONNECTED"
    assert participants[0]["published"] is False


def test_get_participant_returns_its_attributes(ivs_client, stage, joined) -> None:
    participant = ivs_client.get_participant(
        stageArn=stage["arn"], sessionId=joined["session_id"], participantId="participant1"
    )["participant"]

    assert participant["userId"] == "user-1"
    assert participant["attributes"] == {"displayName": "Sam"}
    assert participant["state"] == "CONNECTED"
    assert participant["firstJoinTime"].tzinfo is not None


def test_get_unknown_participant_is_not_found(ivs_client, stage, joined) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_participant(
            stageArn=stage["arn"], sessionId=joined["session_id"], participantId="nobody"
        )


def test_disconnect_marks_the_participant_disconnected(ivs_client, stage, joined) -> None:
    ivs_client.disconnect_participant(
        stageArn=stage["arn"], participantId="participant1", reason="moderated"
    )

    participant = ivs_client.get_participant(
        stageArn=stage["arn"], sessionId=joined["session_id"], participantId="participant1"
    )["participant"]
    assert participant["state"] == "DISCONNECTED"


def test_last_disconnect_ends_the_session(ivs_client, stage, joined) -> None:
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    assert "activeSessionId" not in ivs_client.get_stage(arn=stage["arn"])["stage"]
    session = ivs_client.get_stage_session(stageArn=stage["arn"], sessionId=joined["session_id"])
    assert "endTime" in session["stageSession"]


def test_join_after_session_ended_starts_a_new_session(
    emulator, ivs_client, stage, private_key, key_arn, joined
) -> None:
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    join(emulator.url, self_signed(private_key, key_arn, stage, jti="participant2"))

    sessions = ivs_client.list_stage_sessions(stageArn=stage["arn"])["stageSessions"]
    assert len(sessions) == 2
    assert sessions[0]["sessionId"] != joined["session_id"]  # newest first


def test_disconnect_of_a_participant_not_connected_is_not_found(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="nobody")


def test_disconnect_on_unknown_stage_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.disconnect_participant(
            stageArn="arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage1",
            participantId="p",
        )


def test_list_participants_filters_by_user_id(
    emulator, ivs_client, stage, private_key, key_arn, joined
) -> None:
    join(emulator.url, self_signed(private_key, key_arn, stage, jti="p2", user_id="other"))

    participants = ivs_client.list_participants(
        stageArn=stage["arn"], sessionId=joined["session_id"], filterByUserId="other"
    )["participants"]

    assert [p["participantId"] for p in participants] == ["p2"]


def test_list_participants_filters_by_state(
    emulator, ivs_client, stage, private_key, key_arn, joined
) -> None:
    join(emulator.url, self_signed(private_key, key_arn, stage, jti="p2"))
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="p2")

    participants = ivs_client.list_participants(
        stageArn=stage["arn"], sessionId=joined["session_id"], filterByState="DISCONNECTED"
    )["participants"]

    assert [p["participantId"] for p in participants] == ["p2"]


def test_list_participants_takes_one_filter_at_most(ivs_client, stage, joined) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        ivs_client.list_participants(
            stageArn=stage["arn"],
            sessionId=joined["session_id"],
            filterByUserId="user-1",
            filterByState="CONNECTED",
        )


def test_list_participants_pages(emulator, ivs_client, stage, private_key, key_arn, joined) -> None:
    for index in range(2, 5):
        join(emulator.url, self_signed(private_key, key_arn, stage, jti=f"participant{index}"))

    first = ivs_client.list_participants(
        stageArn=stage["arn"], sessionId=joined["session_id"], maxResults=3
    )
    second = ivs_client.list_participants(
        stageArn=stage["arn"],
        sessionId=joined["session_id"],
        maxResults=3,
        nextToken=first["nextToken"],
    )

    ids = [p["participantId"] for p in first["participants"] + second["participants"]]
    assert ids == ["participant1", "participant2", "participant3", "participant4"]


def test_list_participants_of_unknown_session_is_empty(ivs_client, stage) -> None:
    participants = ivs_client.list_participants(stageArn=stage["arn"], sessionId="st-AAAAAAAAAAAAA")

    assert participants["participants"] == []


def test_deleting_the_stage_ends_its_session(
    emulator, ivs_client, stage, joined, private_key, key_arn
) -> None:
    ivs_client.delete_stage(arn=stage["arn"])

    response = join(emulator.url, self_signed(private_key, key_arn, stage, jti="late"))
    assert response.json()["reason"] == "stage_not_found"

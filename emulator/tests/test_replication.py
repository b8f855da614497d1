"""Participant replication: start, stop, list replicas; the replica in the destination stage."""

from __future__ import annotations

import pytest

from tests.helpers import join, self_signed


@pytest.fixture
def destination(ivs_client) -> dict:
    return dict(ivs_client.create_stage(name="destination")["stage"])


@pytest.fixture
def source_session(emulator, ivs_client, stage, private_key, key_arn) -> str:
    """`participant1` (a publisher) joined `stage`; the session's ID."""
    assert join(emulator.url, self_signed(private_key, key_arn, stage)).status_code == 200
    return str(ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"])


def _start(client, stage, destination, **extra):
    return client.start_participant_replication(
        sourceStageArn=stage["arn"],
        destinationStageArn=destination["arn"],
        participantId="participant1",
        **extra,
    )


def _participant(client, stage_arn: str, participant_id: str = "participant1") -> dict:
    session_id = client.get_stage(arn=stage_arn)["stage"].get("activeSessionId")
    if session_id is None:
        session_id = client.list_stage_sessions(stageArn=stage_arn)["stageSessions"][0]["sessionId"]
    return dict(
        client.get_participant(
            stageArn=stage_arn, sessionId=session_id, participantId=participant_id
        )["participant"]
    )


def test_start_answers_200(ivs_client, stage, destination, source_session) -> None:
    response = _start(ivs_client, stage, destination, reconnectWindowSeconds=10)

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_the_replica_joins_the_destination_stage(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination, attributes={"displayName": "Guest", "team": "a"})

    replica = _participant(ivs_client, destination["arn"])
    assert replica["state"] == "CONNECTED"
    assert replica["userId"] == "user-1"
    assert replica["replicationType"] == "REPLICA"
    assert replica["replicationState"] == "ACTIVE"
    assert replica["sourceStageArn"] == stage["arn"]
    assert replica["sourceSessionId"] == source_session
    # The request's attributes are merged over the token's, and win.
    assert replica["attributes"] == {"displayName": "Guest", "team": "a"}


def test_the_source_participant_shows_it_is_replicated(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)

    source = _participant(ivs_client, stage["arn"])
    assert source["replicationType"] == "SOURCE"
    assert source["replicationState"] == "ACTIVE"


def test_a_participant_never_replicated_has_type_none(ivs_client, stage, source_session) -> None:
    assert _participant(ivs_client, stage["arn"])["replicationType"] == "NONE"


def test_list_participant_replicas_lists_the_replication(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)
    destination_session = ivs_client.get_stage(arn=destination["arn"])["stage"]["activeSessionId"]

    replicas = ivs_client.list_participant_replicas(
        sourceStageArn=stage["arn"], participantId="participant1"
    )["replicas"]

    assert replicas == [
        {
            "sourceStageArn": stage["arn"],
            "participantId": "participant1",
            "sourceSessionId": source_session,
            "destinationStageArn": destination["arn"],
            "destinationSessionId": destination_session,
            "replicationState": "ACTIVE",
        }
    ]


def test_list_replicas_of_an_unknown_stage_is_empty(ivs_client) -> None:
    unknown = "arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"
    listed = ivs_client.list_participant_replicas(sourceStageArn=unknown, participantId="p")

    assert listed["replicas"] == []


def test_list_replicas_max_results_50_is_accepted_and_51_rejected(
    ivs_client, loose_client, stage
) -> None:
    ivs_client.list_participant_replicas(
        sourceStageArn=stage["arn"], participantId="p", maxResults=50
    )

    with pytest.raises(loose_client.exceptions.ValidationException, match="maxResults"):
        loose_client.list_participant_replicas(
            sourceStageArn=stage["arn"], participantId="p", maxResults=51
        )


def test_stop_disconnects_the_replica_and_marks_it_stopped(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)

    ivs_client.stop_participant_replication(
        sourceStageArn=stage["arn"],
        destinationStageArn=destination["arn"],
        participantId="participant1",
    )

    replicas = ivs_client.list_participant_replicas(
        sourceStageArn=stage["arn"], participantId="participant1"
    )["replicas"]
    assert [r["replicationState"] for r in replicas] == ["STOPPED"]
    assert _participant(ivs_client, destination["arn"])["state"] == "DISCONNECTED"
    assert _participant(ivs_client, stage["arn"])["replicationState"] == "STOPPED"


def test_a_stopped_replication_can_start_again(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)
    ivs_client.stop_participant_replication(
        sourceStageArn=stage["arn"],
        destinationStageArn=destination["arn"],
        participantId="participant1",
    )

    _start(ivs_client, stage, destination)

    assert _participant(ivs_client, destination["arn"])["state"] == "CONNECTED"


def test_stop_of_a_replication_that_is_not_running_is_not_found(
    ivs_client, stage, destination, source_session
) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.stop_participant_replication(
            sourceStageArn=stage["arn"],
            destinationStageArn=destination["arn"],
            participantId="participant1",
        )


def test_replicating_to_the_same_stage_is_rejected(ivs_client, stage, source_session) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException, match="different"):
        _start(ivs_client, stage, stage)


def test_replicating_a_participant_not_connected_is_not_found(
    ivs_client, stage, destination
) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        _start(ivs_client, stage, destination)


def test_replicating_to_an_unknown_stage_is_not_found(ivs_client, stage, source_session) -> None:
    unknown = {"arn": "arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"}
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        _start(ivs_client, stage, unknown)


def test_replicating_twice_to_the_same_stage_is_a_conflict(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)

    with pytest.raises(ivs_client.exceptions.ConflictException):
        _start(ivs_client, stage, destination)


def test_a_subscriber_only_participant_is_not_replicated(
    emulator, ivs_client, stage, destination, private_key, key_arn
) -> None:
    caps = {"allow_publish": False, "allow_subscribe": True}
    join(emulator.url, self_signed(private_key, key_arn, stage, capabilities=caps))

    with pytest.raises(ivs_client.exceptions.ValidationException, match="publish"):
        _start(ivs_client, stage, destination)


def test_a_replica_is_not_replicated_again(ivs_client, stage, destination, source_session) -> None:
    third = ivs_client.create_stage(name="third")["stage"]
    _start(ivs_client, stage, destination)

    with pytest.raises(ivs_client.exceptions.ValidationException, match="replica"):
        _start(ivs_client, destination, third)


def test_reconnect_window_of_300_is_accepted_and_301_rejected(
    ivs_client, loose_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination, reconnectWindowSeconds=300)

    with pytest.raises(loose_client.exceptions.ValidationException, match="reconnectWindow"):
        _start(loose_client, stage, destination, reconnectWindowSeconds=301)


def test_replica_attributes_over_1024_bytes_are_rejected(
    ivs_client, stage, destination, source_session
) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException, match="1024"):
        _start(ivs_client, stage, destination, attributes={"k": "v" * 1024})


def test_disconnecting_the_source_stops_its_replications(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)

    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    replicas = ivs_client.list_participant_replicas(
        sourceStageArn=stage["arn"], participantId="participant1"
    )["replicas"]
    assert replicas[0]["replicationState"] == "STOPPED"
    assert _participant(ivs_client, destination["arn"])["state"] == "DISCONNECTED"


def test_disconnecting_the_replica_stops_the_replication(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)

    ivs_client.disconnect_participant(stageArn=destination["arn"], participantId="participant1")

    replicas = ivs_client.list_participant_replicas(
        sourceStageArn=stage["arn"], participantId="participant1"
    )["replicas"]
    assert replicas[0]["replicationState"] == "STOPPED"
    assert _participant(ivs_client, stage["arn"])["state"] == "CONNECTED"


def test_deleting_the_destination_stops_the_replication(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)

    ivs_client.delete_stage(arn=destination["arn"])

    replicas = ivs_client.list_participant_replicas(
        sourceStageArn=stage["arn"], participantId="participant1"
    )["replicas"]
    assert replicas[0]["replicationState"] == "STOPPED"


def test_list_participants_of_the_destination_shows_replication_fields(
    ivs_client, stage, destination, source_session
) -> None:
    _start(ivs_client, stage, destination)
    session_id = ivs_client.get_stage(arn=destination["arn"])["stage"]["activeSessionId"]

    (summary,) = ivs_client.list_participants(stageArn=destination["arn"], sessionId=session_id)[
        "participants"
    ]

    assert summary["replicationType"] == "REPLICA"
    assert summary["replicationState"] == "ACTIVE"
    assert summary["sourceStageArn"] == stage["arn"]

"""`--state FILE` keeps ingest configurations, replicas, events and revoked tokens."""

from __future__ import annotations

import json

import httpx
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer

from tests.helpers import join


def _client(emulator_boto3_session, server):
    return emulator_boto3_session.client("ivs-realtime", endpoint_url=server.url)


def test_ingest_configurations_survive_a_restart(tmp_path, emulator_boto3_session) -> None:
    options = EmulatorOptions(state_file=tmp_path / "state.json")
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        stage = client.create_stage()["stage"]
        config = client.create_ingest_configuration(
            ingestProtocol="RTMPS", stageArn=stage["arn"], tags={"a": "b"}, redundantIngest=True
        )["ingestConfiguration"]
        httpx.post(
            f"{first.url}/_emulator/ingest",
            json={"streamKey": config["streamKey"], "action": "start"},
        )

    with EmulatorServer(options=options) as second:
        client = _client(emulator_boto3_session, second)
        kept = client.get_ingest_configuration(arn=config["arn"])["ingestConfiguration"]
        assert kept == {**config, "state": "ACTIVE"}
        assert client.list_tags_for_resource(resourceArn=config["arn"])["tags"] == {"a": "b"}


def test_replicas_and_events_survive_a_restart(tmp_path, emulator_boto3_session) -> None:
    options = EmulatorOptions(state_file=tmp_path / "state.json")
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        source, destination = client.create_stage()["stage"], client.create_stage()["stage"]
        issued = client.create_participant_token(stageArn=source["arn"])["participantToken"]
        join(first.url, issued["token"])
        pid = issued["participantId"]
        client.start_participant_replication(
            sourceStageArn=source["arn"], destinationStageArn=destination["arn"], participantId=pid
        )
        replicas = client.list_participant_replicas(sourceStageArn=source["arn"], participantId=pid)
        session_id = client.get_stage(arn=source["arn"])["stage"]["activeSessionId"]
        events = client.list_participant_events(
            stageArn=source["arn"], sessionId=session_id, participantId=pid
        )["events"]

    with EmulatorServer(options=options) as second:
        client = _client(emulator_boto3_session, second)
        after = client.list_participant_replicas(sourceStageArn=source["arn"], participantId=pid)
        assert after["replicas"] == replicas["replicas"]
        kept = client.list_participant_events(
            stageArn=source["arn"], sessionId=session_id, participantId=pid
        )["events"]
        assert kept == events


def test_revoked_tokens_stay_revoked_after_a_restart(tmp_path, emulator_boto3_session) -> None:
    options = EmulatorOptions(state_file=tmp_path / "state.json")
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        stage = client.create_stage()["stage"]
        issued = client.create_participant_token(stageArn=stage["arn"])["participantToken"]
        client.revoke_connection_token(tokenId=issued["participantId"])

    with EmulatorServer(options=options) as second:
        assert join(second.url, issued["token"]).json()["reason"] == "token_revoked"


def test_a_state_file_without_the_new_members_still_loads(tmp_path, emulator_boto3_session) -> None:
    path = tmp_path / "state.json"
    options = EmulatorOptions(state_file=path)
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        stage = client.create_stage()["stage"]
        join(
            first.url,
            client.create_participant_token(stageArn=stage["arn"])["participantToken"]["token"],
        )
    document = json.loads(path.read_text())
    for region in document["regions"].values():
        for name in ("ingestConfigurations", "replicas", "revokedTokenIds"):
            region.pop(name)
        for stage_json in region["stages"]:
            for session in stage_json["sessions"]:
                for participant in session["participants"]:
                    for name in ("events", "protocol", "replicationType", "tokenExpiration"):
                        participant.pop(name)
    path.write_text(json.dumps(document))

    with EmulatorServer(options=options) as second:
        client = _client(emulator_boto3_session, second)
        assert client.get_stage(arn=stage["arn"])["stage"]["arn"] == stage["arn"]

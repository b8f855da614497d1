"""`--state FILE`: state survives a restart of the emulator."""

from __future__ import annotations

import stat

import pytest
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.persistence import StateFileError
from ivs_realtime_emulator.server import EmulatorServer

from tests.helpers import join, new_p384_key, public_pem, self_signed


def _client(emulator_boto3_session, server):
    return emulator_boto3_session.client("ivs-realtime", endpoint_url=server.url)


def test_stages_keys_and_tags_survive_a_restart(tmp_path, emulator_boto3_session) -> None:
    options = EmulatorOptions(state_file=tmp_path / "state.json")
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        stage = client.create_stage(name="kept", tags={"a": "b"})["stage"]
        key = client.import_public_key(publicKeyMaterial=public_pem(new_p384_key()))["publicKey"]

    with EmulatorServer(options=options) as second:
        client = _client(emulator_boto3_session, second)
        assert client.get_stage(arn=stage["arn"])["stage"] == stage
        assert (
            client.get_public_key(arn=key["arn"])["publicKey"]["fingerprint"] == key["fingerprint"]
        )


def test_disconnected_tokens_stay_refused_after_a_restart(tmp_path, emulator_boto3_session) -> None:
    options = EmulatorOptions(state_file=tmp_path / "state.json")
    private_key = new_p384_key()
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        stage = client.create_stage()["stage"]
        kid = client.import_public_key(publicKeyMaterial=public_pem(private_key))["publicKey"][
            "arn"
        ]
        token = self_signed(private_key, kid, stage)
        join(first.url, token)
        client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    with EmulatorServer(options=options) as second:
        assert join(second.url, token).json()["reason"] == "participant_disconnected"


def test_issued_tokens_still_join_after_a_restart(tmp_path, emulator_boto3_session) -> None:
    options = EmulatorOptions(state_file=tmp_path / "state.json")
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        stage = client.create_stage()["stage"]
        token = client.create_participant_token(stageArn=stage["arn"])["participantToken"]

    with EmulatorServer(options=options) as second:
        assert join(second.url, token["token"]).status_code == 200


def test_state_file_is_readable_by_its_owner_only(tmp_path, emulator_boto3_session) -> None:
    path = tmp_path / "state.json"
    with EmulatorServer(options=EmulatorOptions(state_file=path)) as server:
        _client(emulator_boto3_session, server).create_stage()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unusable_state_file_fails_the_start(tmp_path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")

    with pytest.raises(StateFileError, match=r"state\.json"):
        EmulatorServer(options=EmulatorOptions(state_file=path)).start()


def test_state_file_of_another_account_fails_the_start(tmp_path, emulator_boto3_session) -> None:
    path = tmp_path / "state.json"
    with EmulatorServer(options=EmulatorOptions(state_file=path)) as server:
        _client(emulator_boto3_session, server).create_stage()

    with pytest.raises(StateFileError, match="account"):
        EmulatorServer(options=EmulatorOptions(state_file=path, account_id="210987654321")).start()

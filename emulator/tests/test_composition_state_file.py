"""`--state FILE`: configurations and compositions survive a restart."""

from __future__ import annotations

import json

from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer


def _client(emulator_boto3_session, server):
    return emulator_boto3_session.client("ivs-realtime", endpoint_url=server.url)


def test_configurations_and_compositions_survive_a_restart(
    tmp_path, emulator_boto3_session
) -> None:
    options = EmulatorOptions(state_file=tmp_path / "state.json", quotas_enabled=False)
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        encoder = client.create_encoder_configuration(name="e", tags={"a": "b"})[
            "encoderConfiguration"
        ]
        storage = client.create_storage_configuration(s3={"bucketName": "recs"})[
            "storageConfiguration"
        ]
        stage = client.create_stage(
            autoParticipantRecordingConfiguration={"storageConfigurationArn": storage["arn"]}
        )["stage"]
        arn = client.start_composition(
            stageArn=stage["arn"],
            destinations=[
                {
                    "s3": {
                        "storageConfigurationArn": storage["arn"],
                        "encoderConfigurationArns": [encoder["arn"]],
                    }
                }
            ],
        )["composition"]["arn"]
        composition = client.get_composition(arn=arn)["composition"]

    with EmulatorServer(options=options) as second:
        client = _client(emulator_boto3_session, second)
        assert client.get_encoder_configuration(arn=encoder["arn"])["encoderConfiguration"] == (
            encoder
        )
        assert client.get_storage_configuration(arn=storage["arn"])["storageConfiguration"] == (
            storage
        )
        assert client.get_composition(arn=arn)["composition"] == composition
        assert client.get_stage(arn=stage["arn"])["stage"] == stage


def test_a_composition_stopped_before_a_restart_stays_stopped(
    tmp_path, emulator_boto3_session
) -> None:
    options = EmulatorOptions(state_file=tmp_path / "state.json", quotas_enabled=False)
    with EmulatorServer(options=options) as first:
        client = _client(emulator_boto3_session, first)
        stage = client.create_stage()["stage"]
        arn = client.start_composition(
            stageArn=stage["arn"],
            destinations=[
                {"channel": {"channelArn": "arn:aws:ivs:us-east-1:123456789012:channel/c"}}
            ],
        )["composition"]["arn"]
        client.stop_composition(arn=arn)
        stopped = client.get_composition(arn=arn)["composition"]

    with EmulatorServer(options=options) as second:
        assert _client(emulator_boto3_session, second).get_composition(arn=arn)["composition"] == (
            stopped
        )


def test_state_file_without_the_new_resources_still_loads(tmp_path, emulator_boto3_session) -> None:
    path = tmp_path / "state.json"
    with EmulatorServer(options=EmulatorOptions(state_file=path)) as first:
        stage = _client(emulator_boto3_session, first).create_stage(name="old")["stage"]
    document = json.loads(path.read_text())
    for region in document["regions"].values():
        for key in ("encoderConfigurations", "storageConfigurations", "compositions"):
            del region[key]
    path.write_text(json.dumps(document))

    with EmulatorServer(options=EmulatorOptions(state_file=path)) as second:
        client = _client(emulator_boto3_session, second)
        assert client.get_stage(arn=stage["arn"])["stage"]["name"] == "old"
        assert client.list_compositions()["compositions"] == []

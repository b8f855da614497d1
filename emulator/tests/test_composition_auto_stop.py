"""A composition stops by itself once its stage has had no participant for the idle timeout.

IVS waits 60 s; these tests set the emulator's timeout to 0 so the stop is seen at once
(test_compositions.py holds the other side: still ACTIVE right after the stage empties).
"""

from __future__ import annotations

import pytest
from ivs_realtime_emulator.options import EmulatorOptions

from tests.helpers import join

CHANNEL = "arn:aws:ivs:us-east-1:123456789012:channel/abcdEFGHijkl"


@pytest.fixture
def emulator_options() -> EmulatorOptions:
    return EmulatorOptions(quotas_enabled=False, composition_idle_timeout_seconds=0)


def _join(emulator, ivs_client, stage) -> str:
    token = ivs_client.create_participant_token(stageArn=stage["arn"])["participantToken"]
    assert join(emulator.url, token["token"]).status_code == 200
    return token["participantId"]


def _start(ivs_client, stage) -> str:
    return ivs_client.start_composition(
        stageArn=stage["arn"], destinations=[{"channel": {"channelArn": CHANNEL}}]
    )["composition"]["arn"]


def test_composition_runs_while_a_participant_is_connected(emulator, ivs_client, stage) -> None:
    _join(emulator, ivs_client, stage)
    arn = _start(ivs_client, stage)

    assert ivs_client.get_composition(arn=arn)["composition"]["state"] == "ACTIVE"


def test_composition_stops_when_the_last_participant_disconnects(
    emulator, ivs_client, stage
) -> None:
    participant_id = _join(emulator, ivs_client, stage)
    arn = _start(ivs_client, stage)

    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId=participant_id)

    composition = ivs_client.get_composition(arn=arn)["composition"]
    session_id = ivs_client.list_stage_sessions(stageArn=stage["arn"])["stageSessions"][0][
        "sessionId"
    ]
    session = ivs_client.get_stage_session(stageArn=stage["arn"], sessionId=session_id)
    assert composition["state"] == "STOPPED"
    assert composition["endTime"] == session["stageSession"]["endTime"]


def test_composition_started_on_an_empty_stage_stops(ivs_client, stage) -> None:
    arn = _start(ivs_client, stage)

    composition = ivs_client.get_composition(arn=arn)["composition"]

    assert composition["state"] == "STOPPED"
    assert composition["endTime"] == composition["startTime"]


def test_auto_stopped_composition_is_listed_as_stopped(emulator, ivs_client, stage) -> None:
    participant_id = _join(emulator, ivs_client, stage)
    _start(ivs_client, stage)
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId=participant_id)

    listed = ivs_client.list_compositions()["compositions"]

    assert [c["state"] for c in listed] == ["STOPPED"]
    assert listed[0]["destinations"][0]["state"] == "STOPPED"


def test_auto_stopped_composition_frees_its_channel(emulator, ivs_client, stage) -> None:
    participant_id = _join(emulator, ivs_client, stage)
    _start(ivs_client, stage)
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId=participant_id)
    _join(emulator, ivs_client, stage)

    assert ivs_client.get_composition(arn=_start(ivs_client, stage))["composition"]["state"] == (
        "ACTIVE"
    )

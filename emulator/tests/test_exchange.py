"""`POST /_emulator/exchange`: what IVS checks when a connected participant swaps its token."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.helpers import join, self_signed


def exchange(emulator_url: str, token: str, participant_id: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"token": token}
    if participant_id is not None:
        body["participantId"] = participant_id
    return httpx.post(f"{emulator_url}/_emulator/exchange", json=body, timeout=5)


def _joined_viewer(emulator, stage, private_key, key_arn) -> None:
    viewer = {"allow_publish": False, "allow_subscribe": True}
    response = join(emulator.url, self_signed(private_key, key_arn, stage, capabilities=viewer))
    assert response.status_code == 200, response.text


def test_exchange_updates_capabilities_attributes_and_user_id(
    emulator, stage, private_key, key_arn
) -> None:
    _joined_viewer(emulator, stage, private_key, key_arn)
    token = self_signed(private_key, key_arn, stage, user_id="user-2", iat=int(time.time()) + 1)

    response = exchange(emulator.url, token, "participant1")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "participantId": "participant1",
        "userId": "user-2",
        "stageArn": stage["arn"],
        "capabilities": ["PUBLISH", "SUBSCRIBE"],
    }


def test_exchange_is_visible_in_get_participant(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    _joined_viewer(emulator, stage, private_key, key_arn)
    exchange(emulator.url, self_signed(private_key, key_arn, stage, attributes={"role": "guest"}))

    session_id = ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"]
    participant = ivs_client.get_participant(
        stageArn=stage["arn"], sessionId=session_id, participantId="participant1"
    )["participant"]
    assert participant["attributes"] == {"role": "guest"}


def test_a_changed_jti_is_refused(emulator, stage, private_key, key_arn) -> None:
    _joined_viewer(emulator, stage, private_key, key_arn)

    response = exchange(emulator.url, self_signed(private_key, key_arn, stage, jti="other"))

    assert response.status_code == 403
    assert response.json()["reason"] == "participant_not_connected"


def test_a_jti_other_than_the_participant_id_is_refused(
    emulator, stage, private_key, key_arn
) -> None:
    _joined_viewer(emulator, stage, private_key, key_arn)

    response = exchange(
        emulator.url, self_signed(private_key, key_arn, stage, jti="other"), "participant1"
    )

    assert response.status_code == 400
    assert response.json()["reason"] == "participant_mismatch"


def test_a_changed_endpoint_is_refused(emulator, stage, private_key, key_arn) -> None:
    _joined_viewer(emulator, stage, private_key, key_arn)

    response = exchange(
        emulator.url, self_signed(private_key, key_arn, stage, whip_url="https://elsewhere")
    )

    assert response.json()["reason"] == "endpoint_mismatch"


def test_a_changed_version_is_refused(emulator, stage, private_key, key_arn) -> None:
    _joined_viewer(emulator, stage, private_key, key_arn)

    response = exchange(emulator.url, self_signed(private_key, key_arn, stage, version="2.0"))

    assert response.json()["reason"] == "bad_version"


def test_an_expired_token_is_refused(emulator, stage, private_key, key_arn) -> None:
    _joined_viewer(emulator, stage, private_key, key_arn)
    past = int(time.time()) - 10

    response = exchange(
        emulator.url, self_signed(private_key, key_arn, stage, iat=past - 60, exp=past)
    )

    assert response.json()["reason"] == "expired"


def test_a_participant_not_connected_is_refused(emulator, stage, private_key, key_arn) -> None:
    response = exchange(emulator.url, self_signed(private_key, key_arn, stage))

    assert response.status_code == 403
    assert response.json()["reason"] == "participant_not_connected"


def test_a_disconnected_participant_is_refused(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    _joined_viewer(emulator, stage, private_key, key_arn)
    join(emulator.url, self_signed(private_key, key_arn, stage, jti="keeps-session-open"))
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    response = exchange(emulator.url, self_signed(private_key, key_arn, stage))

    assert response.status_code == 403
    assert response.json()["reason"] == "participant_not_connected"


def test_a_body_without_token_is_refused(emulator) -> None:
    response = httpx.post(f"{emulator.url}/_emulator/exchange", json={"x": 1}, timeout=5)

    assert response.status_code == 400
    assert response.json()["reason"] == "invalid_request"

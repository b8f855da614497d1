"""`token-service participant-token`: an operator's token, minted from a shell against a real
Redis and the emulator (its own process, over HTTP), as an operator would run it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import create_stage, run_cli

UNKNOWN_STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage1"


@pytest.fixture
def env(emulator_url: str, clean_redis: str, tmp_path: Path) -> dict[str, str]:
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path / "keys"),
        "TOKEN_SERVICE_REDIS_URL": clean_redis,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }


@pytest.fixture
def keyed_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with an active signing key, imported into the emulator."""
    rotated = run_cli("keys", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    return env


def _join(emulator_url: str, token: str) -> httpx.Response:
    return httpx.post(f"{emulator_url}/_emulator/join", json={"token": token}, timeout=5)


def _mint(env: dict[str, str], stage_arn: str, *flags: str) -> Any:
    result = run_cli(
        "participant-token", "--stage-arn", stage_arn, "--user-id", "ops-test", *flags, env=env
    )
    assert result.returncode == 0, result.stderr
    return result


def test_the_printed_token_alone_joins_the_stage(
    emulator_url: str, keyed_env: dict[str, str]
) -> None:
    stage_arn = create_stage(emulator_url, "ops")

    printed = _mint(keyed_env, stage_arn).stdout

    assert printed.count("\n") == 1
    joined = _join(emulator_url, printed.strip())
    assert joined.status_code == 200, joined.text
    assert joined.json()["userId"] == "ops-test"


def test_the_mapping_log_holds_the_minted_participant_marked_as_the_cli(
    emulator_url: str, keyed_env: dict[str, str]
) -> None:
    stage_arn = create_stage(emulator_url, "ops")
    answer = json.loads(_mint(keyed_env, stage_arn, "--json").stdout)

    shown = run_cli("participants", "show", answer["participantId"], env=keyed_env)

    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["appUserId"] == "ops-test"
    assert record["stageArn"] == stage_arn
    assert record["signer"] == "local"
    assert "participant-token (cli:" in record["userAgent"]


def test_json_prints_the_answer_of_the_http_route(
    emulator_url: str, keyed_env: dict[str, str]
) -> None:
    stage_arn = create_stage(emulator_url, "ops")

    answer = json.loads(
        _mint(
            keyed_env, stage_arn, "--json", "--subscribe", "--duration", "30",
            "--attribute", "displayName=Ops", "--attribute", "note=a=b",
        ).stdout
    )  # fmt: skip

    assert sorted(answer) == [
        "attributes",
        "capabilities",
        "durationMinutes",
        "expirationTime",
        "keyArn",
        "participantId",
        "signer",
        "stageArn",
        "token",
        "userId",
    ]
    assert answer["capabilities"] == ["SUBSCRIBE"]
    assert answer["durationMinutes"] == 30
    assert answer["attributes"] == {"displayName": "Ops", "note": "a=b"}
    assert answer["userId"] == "ops-test"
    joined = _join(emulator_url, answer["token"]).json()
    assert joined["participantId"] == answer["participantId"]
    assert joined["capabilities"] == ["SUBSCRIBE"]


def test_ivs_mode_mints_through_create_participant_token(
    emulator_url: str, env: dict[str, str]
) -> None:
    stage_arn = create_stage(emulator_url, "ops")
    ivs_env = {**env, "TOKEN_SERVICE_MODE": "ivs"}

    answer = json.loads(_mint(ivs_env, stage_arn, "--json").stdout)

    calls = httpx.get(f"{emulator_url}/_emulator/stats", timeout=5).json()["operations"]
    assert calls["CreateParticipantToken"]["calls"] == 1
    assert answer["signer"] == "ivs"
    assert answer["keyArn"] is None
    assert _join(emulator_url, answer["token"]).status_code == 200
    shown = run_cli("participants", "show", answer["participantId"], env=ivs_env)
    assert json.loads(shown.stdout)["signer"] == "ivs"


def test_without_an_active_key_it_says_to_rotate_one(
    emulator_url: str, env: dict[str, str]
) -> None:
    stage_arn = create_stage(emulator_url, "ops")

    result = run_cli("participant-token", "--stage-arn", stage_arn, "--user-id", "u", env=env)

    assert result.returncode == 1
    assert "no active signing key" in result.stderr
    assert "token-service keys rotate" in result.stderr
    assert result.stdout == ""


def test_an_unknown_stage_is_named_with_its_flag_and_nothing_is_recorded(
    keyed_env: dict[str, str],
) -> None:
    result = run_cli(
        "participant-token", "--stage-arn", UNKNOWN_STAGE, "--user-id", "u", env=keyed_env
    )
    listed = run_cli("participants", "of-user", "u", env=keyed_env)

    assert result.returncode == 1
    assert f"--stage-arn: stage {UNKNOWN_STAGE} does not exist" in result.stderr
    assert result.stdout == ""
    assert json.loads(listed.stdout)["participants"] == []


def test_a_duration_beyond_the_policys_longest_is_refused_naming_the_flag(
    emulator_url: str, keyed_env: dict[str, str]
) -> None:
    stage_arn = create_stage(emulator_url, "ops")

    result = run_cli(
        "participant-token", "--stage-arn", stage_arn, "--user-id", "u", "--duration", "721",
        env=keyed_env,
    )  # fmt: skip

    assert result.returncode == 1
    # The built-in policy grants at most 720 minutes.
    assert "--duration 721 exceeds the maximum of 720 minutes" in result.stderr


def test_a_stage_of_another_region_is_refused_naming_the_flag(keyed_env: dict[str, str]) -> None:
    elsewhere = "arn:aws:ivs:eu-west-1:123456789012:stage/AbCdEf123456"

    result = run_cli("participant-token", "--stage-arn", elsewhere, "--user-id", "u", env=keyed_env)

    assert result.returncode == 1
    assert "--stage-arn: this service issues tokens for stages in us-east-1" in result.stderr

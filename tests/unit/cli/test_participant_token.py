"""`token-service participant-token`: its flags, and the refusals that need no Redis or IVS
(each on stderr naming the flag, nothing on stdout, a non-zero exit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from token_service.cli.main import build_parser, main
from token_service.cli.tokens import token_request
from token_service.domain import Capability

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No `.env` and no Redis: the refusals here come before any connection."""
    monkeypatch.setenv("TOKEN_SERVICE_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.delenv("TOKEN_SERVICE_REDIS_URL", raising=False)
    monkeypatch.delenv("TOKEN_SERVICE_MODE", raising=False)


def parse(*flags: str) -> object:
    return build_parser().parse_args(
        ["participant-token", "--stage-arn", STAGE, "--user-id", "u1", *flags]
    )


def refusal(capsys: pytest.CaptureFixture[str], *flags: str, user_id: str = "u1") -> str:
    code = main(["participant-token", "--stage-arn", STAGE, "--user-id", user_id, *flags])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    return err


def test_neither_publish_nor_subscribe_asks_for_both() -> None:
    assert token_request(parse()).capabilities is None


def test_publish_alone_asks_for_publish_only() -> None:
    assert token_request(parse("--publish")).capabilities == frozenset({Capability.PUBLISH})


def test_attributes_are_split_at_the_first_equals_sign() -> None:
    request = token_request(parse("--attribute", "note=a=b", "--attribute", "empty="))
    assert request.attributes == {"note": "a=b", "empty": ""}


@pytest.mark.parametrize("given", ["noequals", "=value"])
def test_an_attribute_without_key_and_equals_sign_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], given: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("--attribute", given)
    assert exited.value.code == 2
    assert "argument --attribute: expected KEY=VALUE" in capsys.readouterr().err


def test_a_duration_that_is_no_number_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse("--duration", "an hour")
    assert "argument --duration: invalid int value" in capsys.readouterr().err


def test_stage_arn_and_user_id_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["participant-token"])
    assert "--stage-arn, --user-id" in capsys.readouterr().err


def test_an_attribute_given_twice_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = refusal(capsys, "--attribute", "room=a", "--attribute", "room=b")
    assert "--attribute room: given twice" in err


def test_a_malformed_stage_arn_is_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["participant-token", "--stage-arn", "stage-1", "--user-id", "u1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "--stage-arn: must be an IVS stage ARN" in err


@pytest.mark.parametrize(("minutes", "bound"), [("0", ">= 1"), ("20161", "<= 20160")])
def test_a_duration_outside_what_ivs_allows_is_refused_as_the_http_route_words_it(
    capsys: pytest.CaptureFixture[str], minutes: str, bound: str
) -> None:
    assert f"--duration: Expected `int` {bound}" in refusal(capsys, "--duration", minutes)


def test_a_duration_beyond_the_policys_longest_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refusal(capsys, "--duration", "721")
    assert "--duration 721 exceeds the maximum of 720 minutes" in err


def test_attributes_over_the_ivs_size_are_refused_naming_the_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refusal(capsys, "--attribute", "a=" + "x" * 600, "--attribute", "b=" + "y" * 600)
    assert "--attribute: keys plus values take 1202 bytes of UTF-8" in err
    assert "IVS allows at most 1023" in err


def test_a_control_character_in_an_attribute_is_refused_naming_its_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refusal(capsys, "--attribute", "note=line\nbreak")
    assert "--attribute note: control character" in err


def test_an_attribute_key_over_128_characters_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refusal(capsys, "--attribute", "k" * 129 + "=v")
    assert "--attribute: a key: Expected `str` of length <= 128" in err


def test_an_empty_user_id_is_refused_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--user-id is not a user id" in refusal(capsys, user_id="")


def test_a_user_id_longer_than_ivs_carries_is_refused_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "--user-id: your user id has 129 characters" in refusal(capsys, user_id="u" * 129)


def test_every_issuer_is_no_issuer_of_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--issuer: a token is one user's" in refusal(capsys, "--issuer", "*")


def test_without_redis_it_refuses_for_want_of_the_mapping_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["participant-token", "--stage-arn", STAGE, "--user-id", "u1"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "TOKEN_SERVICE_REDIS_URL" in err


def test_an_unreachable_redis_is_refused_before_any_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    monkeypatch.setenv("TOKEN_SERVICE_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    err = refusal(capsys)
    assert "Redis (TOKEN_SERVICE_REDIS_URL) is unreachable" in err
    assert "none was minted" in err
    assert "hunter2" not in err

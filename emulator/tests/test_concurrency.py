"""Concurrent requests: every check-then-change is atomic."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from tests.helpers import join, new_p384_key, public_pem, self_signed


def _outcome(call, **params) -> str:
    try:
        call(**params)
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def test_concurrent_imports_never_exceed_three_keys(ivs_client) -> None:
    pems = [public_pem(new_p384_key()) for _ in range(10)]

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(
            pool.map(
                lambda pem: _outcome(ivs_client.import_public_key, publicKeyMaterial=pem), pems
            )
        )

    assert outcomes.count("ok") == 3
    assert outcomes.count("ServiceQuotaExceededException") == 7
    assert len(ivs_client.list_public_keys()["publicKeys"]) == 3


def test_concurrent_joins_share_one_session(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    tokens = [self_signed(private_key, key_arn, stage, jti=f"p{i}") for i in range(10)]

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = [r.status_code for r in pool.map(lambda t: join(emulator.url, t), tokens)]

    assert statuses == [200] * 10
    sessions = ivs_client.list_stage_sessions(stageArn=stage["arn"])["stageSessions"]
    assert len(sessions) == 1
    participants = ivs_client.list_participants(
        stageArn=stage["arn"], sessionId=sessions[0]["sessionId"]
    )["participants"]
    assert len(participants) == 10


def test_concurrent_token_requests_all_succeed(ivs_client, stage) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(
            pool.map(
                lambda _: _outcome(ivs_client.create_participant_token, stageArn=stage["arn"]),
                range(40),
            )
        )

    assert outcomes == ["ok"] * 40

"""Admin key routes beyond list/rotate/delete: revoke, prepare, safe-time deletes, the audit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer, join
from token_service.keys import SigningKey

ADMIN = bearer(ADMIN_TOKEN)
URL = "/v1/participant-tokens"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def _issue(client: AsyncTestClient[Litestar], user_token: MintUserToken, stage: str) -> Any:
    response = await client.post(URL, json={"stageArn": stage}, headers=bearer(user_token()))
    assert response.status_code == 201, response.text
    return response.json()


async def test_revoke_reports_the_tokens_it_invalidates_and_they_stop_joining(
    client: AsyncTestClient[Litestar],
    signing_key: SigningKey,
    user_token: MintUserToken,
    stage_arn: str,
    emulator: Any,
) -> None:
    issued = [await _issue(client, user_token, stage_arn) for _ in range(2)]
    response = await client.post(f"/admin/keys/{signing_key.name}/revoke", headers=ADMIN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["invalidatedTokens"] == 2
    assert "not expired" in body["invalidatedTokensMeaning"]
    assert body["revoked"]["arn"] == signing_key.arn
    for token in issued:
        assert join(emulator, token["token"]).status_code >= 400
    after = await _issue(client, user_token, stage_arn)
    assert after["keyArn"] == body["active"]["arn"]
    assert join(emulator, after["token"]).status_code == 200


async def test_revoke_counts_the_tokens_exchanged_with_the_key_too(
    client: AsyncTestClient[Litestar],
    signing_key: SigningKey,
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    """An exchange signs a new token with the active key: one more token the revoke kills
    (issue 20, item 3: before, 1 issue + 3 exchanges reported 1)."""
    issued = await _issue(client, user_token, stage_arn)
    for _ in range(3):
        exchanged = await client.post(
            f"{URL}/{issued['participantId']}/exchange", json={}, headers=bearer(user_token())
        )
        assert exchanged.status_code == 200, exchanged.text

    response = await client.post(f"/admin/keys/{signing_key.name}/revoke", headers=ADMIN)

    assert response.json()["invalidatedTokens"] == 4


async def test_an_admin_publish_change_is_counted_against_the_key(
    client: AsyncTestClient[Litestar],
    signing_key: SigningKey,
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    issued = await _issue(client, user_token, stage_arn)
    promoted = await client.post(
        f"/admin/participants/{issued['participantId']}/capabilities",
        json={"publish": True},
        headers=ADMIN,
    )
    assert promoted.status_code == 200, promoted.text

    response = await client.post(f"/admin/keys/{signing_key.name}/revoke", headers=ADMIN)

    assert response.json()["invalidatedTokens"] == 2


async def test_revoking_an_unknown_key_is_404(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.post("/admin/keys/nope/revoke", headers=ADMIN)).status_code == 404


async def test_a_prepared_key_is_listed_as_next_and_promoted_by_rotate(
    client: AsyncTestClient[Litestar],
) -> None:
    prepared = await client.post("/admin/keys/prepare", headers=ADMIN)
    assert prepared.status_code == 201
    assert prepared.json()["status"] == "next"
    listed = (await client.get("/admin/keys", headers=ADMIN)).json()["keys"]
    assert {k["status"] for k in listed} == {"active", "next"}
    rotated = await client.post("/admin/keys/rotate", headers=ADMIN)
    assert rotated.json()["name"] == prepared.json()["name"]


async def test_a_retiring_key_is_deleted_once_its_safe_time_has_passed(
    signing_key: SigningKey,
    make_app: Callable[..., Litestar],
    user_token: MintUserToken,
    stage_arn: str,
    emulator: Any,
) -> None:
    clock = Clock()
    async with AsyncTestClient(app=make_app(clock=clock)) as client:
        old = await _issue(client, user_token, stage_arn)
        assert (await client.post("/admin/keys/rotate", headers=ADMIN)).status_code == 201
        assert (
            await client.delete(f"/admin/keys/{signing_key.name}", headers=ADMIN)
        ).status_code == 409
        # The default policy's longest token (720 minutes) plus the 5-minute margin.
        clock.now += timedelta(minutes=726)
        deleted = await client.delete(f"/admin/keys/{signing_key.name}", headers=ADMIN)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["forced"] is False
    assert join(emulator, old["token"]).status_code >= 400


async def test_every_admin_call_is_audited_with_the_token_position_never_the_token(
    client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="token_service.audit"):
        await client.get("/admin/keys", headers=ADMIN)
        await client.post("/admin/keys/rotate", headers=ADMIN)
    records = [r for r in caplog.records if r.name == "token_service.audit"]
    assert [r.__dict__["event"] for r in records] == ["key_list", "key_rotate"]
    for record in records:
        assert record.__dict__["actor"].startswith("admin-token#1:")
        assert record.__dict__["outcome"] == "ok"
        assert record.__dict__["at"]
        assert ADMIN_TOKEN not in record.getMessage()
        assert ADMIN_TOKEN not in str(record.__dict__)


async def test_a_refused_admin_call_is_audited_as_refused(
    client: AsyncTestClient[Litestar], signing_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="token_service.audit"):
        response = await client.delete(f"/admin/keys/{signing_key.name}", headers=ADMIN)
    assert response.status_code == 409
    (record,) = [r for r in caplog.records if r.name == "token_service.audit"]
    assert record.__dict__["event"] == "key_delete"
    assert record.__dict__["outcome"] == "refused"
    assert record.__dict__["key"] == signing_key.name

"""Admin key routes: list, rotate, delete, behind the admin bearer token."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer, join
from token_service.keys import SigningKey

Client = AsyncTestClient[Litestar]
ADMIN = bearer(ADMIN_TOKEN)


async def test_admin_routes_refuse_a_missing_or_wrong_token(
    client: Client, user_token: MintUserToken
) -> None:
    assert (await client.get("/admin/keys")).status_code == 401
    assert (await client.get("/admin/keys", headers=bearer("x" * 30))).status_code == 401
    # An app user's JWT is not an admin credential.
    assert (await client.get("/admin/keys", headers=bearer(user_token()))).status_code == 401


async def test_list_shows_the_active_key(client: Client, signing_key: SigningKey) -> None:
    response = await client.get("/admin/keys", headers=ADMIN)
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [(k["name"], k["arn"], k["status"]) for k in keys] == [
        (signing_key.name, signing_key.arn, "active")
    ]
    assert keys[0]["fingerprint"]
    assert "PRIVATE" not in response.text


async def test_rotate_activates_a_new_key_and_retires_the_old_one(
    client: Client, signing_key: SigningKey, user_token: MintUserToken, stage_arn: str
) -> None:
    rotated = await client.post("/admin/keys/rotate", headers=ADMIN)
    assert rotated.status_code == 201
    new = rotated.json()
    assert new["status"] == "active"
    keys = {k["name"]: k for k in (await client.get("/admin/keys", headers=ADMIN)).json()["keys"]}
    assert keys[signing_key.name]["status"] == "retiring"
    assert keys[signing_key.name]["safeToDeleteAt"]
    issued = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_token())
    )
    assert issued.json()["keyArn"] == new["arn"]


async def test_token_signed_before_rotation_still_joins(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any
) -> None:
    before = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_token())
    )
    await client.post("/admin/keys/rotate", headers=ADMIN)
    assert join(emulator, before.json()["token"]).status_code == 200


async def test_deleting_the_active_key_is_409(client: Client, signing_key: SigningKey) -> None:
    response = await client.delete(f"/admin/keys/{signing_key.name}", headers=ADMIN)
    assert response.status_code == 409


async def test_a_forced_delete_of_the_active_key_is_409_and_it_keeps_signing(
    client: Client, signing_key: SigningKey, user_token: MintUserToken, stage_arn: str
) -> None:
    """Issue 20, item 7: before, it was deleted and every request was 503 until a rotate."""
    response = await client.delete(f"/admin/keys/{signing_key.name}?force=true", headers=ADMIN)
    assert response.status_code == 409
    assert "revoke" in response.json()["detail"]
    issued = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_token())
    )
    assert issued.status_code == 201
    assert issued.json()["keyArn"] == signing_key.arn


async def test_deleting_a_retiring_key_with_unexpired_tokens_is_409(
    client: Client, signing_key: SigningKey
) -> None:
    await client.post("/admin/keys/rotate", headers=ADMIN)
    response = await client.delete(f"/admin/keys/{signing_key.name}", headers=ADMIN)
    assert response.status_code == 409
    assert "force" in response.json()["detail"]


async def test_forced_delete_removes_the_key_and_its_tokens_stop_joining(
    client: Client,
    signing_key: SigningKey,
    user_token: MintUserToken,
    stage_arn: str,
    emulator: Any,
    ivs_client: Any,
    keys_dir: Any,
) -> None:
    old = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_token())
    )
    await client.post("/admin/keys/rotate", headers=ADMIN)
    response = await client.delete(f"/admin/keys/{signing_key.name}?force=true", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["forced"] is True
    assert join(emulator, old.json()["token"]).status_code >= 400
    arns = {k["arn"] for k in ivs_client.list_public_keys()["publicKeys"]}
    assert signing_key.arn not in arns
    assert not (keys_dir / f"{signing_key.name}.pem").exists()


async def test_unknown_key_name_is_404(client: Client) -> None:
    assert (await client.delete("/admin/keys/nope", headers=ADMIN)).status_code == 404


@pytest.mark.usefixtures("signing_key")
async def test_rotation_with_three_keys_and_none_safe_to_delete_is_409(client: Client) -> None:
    assert (await client.post("/admin/keys/rotate", headers=ADMIN)).status_code == 201
    assert (await client.post("/admin/keys/rotate", headers=ADMIN)).status_code == 201
    response = await client.post("/admin/keys/rotate", headers=ADMIN)
    assert response.status_code == 409
    assert len((await client.get("/admin/keys", headers=ADMIN)).json()["keys"]) == 3

"""Token exchange over HTTP: the participant's own refresh/promotion and an admin's PUBLISH change.

Against the emulator (its `/_emulator/join` and `/_emulator/exchange` rules), with
the memory and the Redis mapping stores.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
import redis as sync_redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer, join
from token_service.config import load_settings
from token_service.mapping.records import Ban, ban_keys
from token_service.mapping.store import MemoryMappingStore

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"
ADMIN = bearer(ADMIN_TOKEN)
Client = AsyncTestClient[Litestar]
IMMUTABLE = ("topic", "resource", "jti", "whip_url", "events_url", "version")
MUTABLE = ("attributes", "capabilities", "user_id", "iat", "exp")


@pytest.fixture
async def client(
    make_app: Callable[..., Litestar], env: dict[str, str], store_redis_url: str | None
) -> AsyncIterator[Client]:
    extra: dict[str, str] = {}
    if store_redis_url is not None:
        extra["TOKEN_SERVICE_REDIS_URL"] = store_redis_url
    app = make_app(settings=load_settings({**env, **extra}))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _header(token: str) -> dict[str, Any]:
    header: dict[str, Any] = jwt.get_unverified_header(token)
    return header


async def _issue(client: Client, token: str, stage_arn: str, **body: Any) -> dict[str, Any]:
    response = await client.post(URL, json={"stageArn": stage_arn, **body}, headers=bearer(token))
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def _exchange(client: Client, participant_id: str, token: str, **body: Any) -> httpx.Response:
    return await client.post(f"{URL}/{participant_id}/exchange", json=body, headers=bearer(token))


def _emulator_exchange(emulator: Any, token: str, participant_id: str) -> httpx.Response:
    return httpx.post(
        f"{emulator.url}/_emulator/exchange",
        json={"participantId": participant_id, "token": token},
        timeout=5,
    )


async def test_exchanged_token_keeps_every_immutable_claim(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn)
    await asyncio.sleep(1.1)  # a new iat

    response = await _exchange(client, issued["participantId"], me)

    assert response.status_code == 200, response.text
    before, after = _claims(issued["token"]), _claims(response.json()["token"])
    for claim in IMMUTABLE:
        assert after[claim] == before[claim], claim
    assert set(after) - set(MUTABLE) == set(before) - set(MUTABLE)


async def test_exchanged_token_has_a_new_iat_and_exp(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn)
    await asyncio.sleep(1.1)

    after = _claims((await _exchange(client, issued["participantId"], me)).json()["token"])

    before = _claims(issued["token"])
    assert after["iat"] > before["iat"]
    assert after["exp"] > before["exp"]


async def test_exchange_changes_only_what_was_asked_for(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn, attributes={"seat": "a"})

    response = await _exchange(client, issued["participantId"], me, attributes={"seat": "b"})

    before, after = _claims(issued["token"]), _claims(response.json()["token"])
    assert before["attributes"] == {"seat": "a"}
    assert after["attributes"] == {"seat": "b"}
    assert after["capabilities"] == before["capabilities"]
    assert after["user_id"] == before["user_id"]


async def test_exchanged_token_passes_the_emulator_exchange_rules(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn)
    assert join(emulator, issued["token"]).status_code == 200
    exchanged = (await _exchange(client, issued["participantId"], me)).json()

    response = _emulator_exchange(emulator, exchanged["token"], issued["participantId"])

    assert response.status_code == 200, response.text
    assert response.json()["participantId"] == issued["participantId"]


async def test_exchanged_token_is_signed_with_the_active_key(
    client: Client, user_token: MintUserToken, stage_arn: str, signing_key: Any
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn)

    exchanged = (await _exchange(client, issued["participantId"], me)).json()

    assert _header(exchanged["token"])["kid"] == signing_key.arn
    assert exchanged["keyArn"] == signing_key.arn


async def test_promotion_when_the_users_roles_now_allow_publish(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any
) -> None:
    issued = await _issue(client, user_token("viewer-1"), stage_arn)
    join(emulator, issued["token"])

    response = await _exchange(
        client,
        issued["participantId"],
        user_token("viewer-1", roles=("publisher",)),
        capabilities=["PUBLISH", "SUBSCRIBE"],
    )

    assert response.status_code == 200, response.text
    assert _claims(response.json()["token"])["capabilities"]["allow_publish"] is True
    joined = _emulator_exchange(emulator, response.json()["token"], issued["participantId"])
    assert joined.json()["capabilities"] == ["PUBLISH", "SUBSCRIBE"]


async def test_another_users_participant_is_404(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    issued = await _issue(client, user_token("viewer-1"), stage_arn)

    response = await _exchange(client, issued["participantId"], user_token("intruder"))

    assert response.status_code == 404


async def test_another_users_participant_looks_like_an_unknown_one(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    issued = await _issue(client, user_token("viewer-1"), stage_arn)

    theirs = await _exchange(client, issued["participantId"], user_token("intruder"))
    unknown = await _exchange(client, "NoSuchParticipant0000", user_token("intruder"))

    assert theirs.json()["detail"] == unknown.json()["detail"]


async def test_disconnected_participant_is_403(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn)
    await client.post(
        f"/admin/participants/{issued['participantId']}/disconnect",
        json={"reason": "spam"},
        headers=ADMIN,
    )

    response = await _exchange(client, issued["participantId"], me)

    assert response.status_code == 403
    assert "disconnected" in response.json()["detail"]


async def test_banned_user_is_403(
    client: Client, user_token: MintUserToken, stage_arn: str, redis_url: str
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn)
    # Straight into the store: the admin route would also disconnect the participant.
    store = client.app.state["services"].mapping
    if isinstance(store, MemoryMappingStore):
        await store.add_ban(
            Ban(id="ban_test", user_id="viewer-1", reason="abuse", created_at=0, created_by="t")
        )
    else:
        sync_redis.Redis.from_url(redis_url).set(
            ban_keys(None, "viewer-1", stage_arn)[0], "ban_test"
        )

    response = await _exchange(client, issued["participantId"], me)

    assert response.status_code == 403
    assert "banned" in response.json()["detail"]


async def test_exchange_is_rate_limited_like_issuance(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    settings = load_settings({**env, "TOKEN_SERVICE_RATE_LIMIT_USER": "2/minute"})
    me = user_token("viewer-1")
    async with AsyncTestClient(app=make_app(settings=settings)) as client:
        issued = await _issue(client, me, stage_arn)
        statuses = [
            (await _exchange(client, issued["participantId"], me)).status_code for _ in range(3)
        ]

    assert statuses[-1] == 429


async def test_exchange_is_recorded_in_the_mapping_record(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn, attributes={"seat": "a"})
    exchanged = (await _exchange(client, issued["participantId"], me)).json()

    view = (
        await client.get(f"/admin/participants/{issued['participantId']}", headers=ADMIN)
    ).json()

    [change] = view["capabilityHistory"]
    assert change["by"] == "exchange"
    assert change["capabilities"] == ["SUBSCRIBE"]
    assert change["expirationTime"] == exchanged["expirationTime"]
    assert view["expirationTime"] == exchanged["expirationTime"]


async def test_admin_promotion_is_visible_in_the_next_exchange(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn)
    promoted = await client.post(
        f"/admin/participants/{issued['participantId']}/capabilities",
        json={"publish": True},
        headers=ADMIN,
    )
    assert promoted.status_code == 200, promoted.text

    response = await _exchange(client, issued["participantId"], me)

    assert response.json()["capabilities"] == ["PUBLISH", "SUBSCRIBE"]
    assert _claims(response.json()["token"])["capabilities"]["allow_publish"] is True


async def test_admin_promotion_returns_a_ready_exchange_token(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any
) -> None:
    issued = await _issue(client, user_token("viewer-1"), stage_arn)
    join(emulator, issued["token"])

    promoted = await client.post(
        f"/admin/participants/{issued['participantId']}/capabilities",
        json={"publish": True},
        headers=ADMIN,
    )

    before, after = _claims(issued["token"]), _claims(promoted.json()["token"])
    for claim in IMMUTABLE:
        assert after[claim] == before[claim], claim
    response = _emulator_exchange(emulator, promoted.json()["token"], issued["participantId"])
    assert response.json()["capabilities"] == ["PUBLISH", "SUBSCRIBE"]


async def test_admin_demotion_is_visible_in_the_next_exchange(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    me = user_token("host-1", roles=("publisher",))
    issued = await _issue(client, me, stage_arn, capabilities=["PUBLISH", "SUBSCRIBE"])
    await client.post(
        f"/admin/participants/{issued['participantId']}/capabilities",
        json={"publish": False},
        headers=ADMIN,
    )

    response = await _exchange(client, issued["participantId"], me)

    assert response.json()["capabilities"] == ["SUBSCRIBE"]


async def test_admin_capabilities_need_the_admin_token(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    issued = await _issue(client, user_token("viewer-1"), stage_arn)

    response = await client.post(
        f"/admin/participants/{issued['participantId']}/capabilities",
        json={"publish": True},
        headers=bearer(user_token("viewer-1")),
    )

    assert response.status_code == 401


# ------------------------------------------------------------------ ivs mode


async def test_ivs_mode_participant_is_409(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    me = user_token("viewer-1")
    settings = load_settings({**env, "TOKEN_SERVICE_MODE": "ivs"})
    async with AsyncTestClient(app=make_app(settings=settings)) as client:
        issued = await _issue(client, me, stage_arn)

        response = await _exchange(client, issued["participantId"], me)

    assert response.status_code == 409
    assert "ivs mode" in response.json()["detail"]


async def test_exchanges_are_counted_in_metrics(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    me = user_token("viewer-1")
    issued = await _issue(client, me, stage_arn)
    await _exchange(client, issued["participantId"], me)

    text = (await client.get("/metrics")).text

    assert 'token_service_token_exchanges_total{by="participant",publish="false"} 1.0' in text


async def test_admin_capabilities_for_a_banned_user_is_403(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    issued = await _issue(client, user_token("viewer-1"), stage_arn)
    await client.post("/admin/bans", json={"userId": "viewer-1", "reason": "abuse"}, headers=ADMIN)

    response = await client.post(
        f"/admin/participants/{issued['participantId']}/capabilities",
        json={"publish": True},
        headers=ADMIN,
    )

    assert response.status_code == 403

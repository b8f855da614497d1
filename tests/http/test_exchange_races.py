"""What another request does between a change's read and its write (issue 20, item 5).

A participant's exchange and an admin's PUBLISH change each read the participant, decide,
then write. Here the other request is made to land exactly in between, every time: the
store's write is wrapped so that something else happens to the participant first (another
change written, or a moderator's disconnect). With the memory and the Redis stores.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import jwt
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer
from token_service.config import load_settings
from token_service.mapping.records import (
    CapabilityChange,
    CapabilityOverride,
    Disconnect,
)
from token_service.mapping.store import MappingStore
from token_service.tokens.exchange import CHANGE_ATTEMPTS

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"
ADMIN = bearer(ADMIN_TOKEN)
Client = AsyncTestClient[Litestar]
#: What happens to a participant (by id) between a change's read and its write, given the
#: store and its own (unwrapped) write.
Meanwhile = Callable[[MappingStore, Any, str], Awaitable[None]]


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


def _store(client: Client) -> MappingStore:
    store: MappingStore = client.app.state["services"].mapping
    return store


def _meanwhile(
    monkeypatch: pytest.MonkeyPatch, client: Client, what: Meanwhile, *, times: int
) -> None:
    """Before each of the next `times` writes of a change, `what` happens to the participant."""
    store = _store(client)
    write = store.exchange
    left = [times]

    async def interfered(*args: Any, **kwargs: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            await what(store, write, args[0].participant_id)
        return await write(*args, **kwargs)

    monkeypatch.setattr(store, "exchange", interfered)


async def _promoted_by_another_admin(store: MappingStore, write: Any, participant_id: str) -> None:
    view = await store.get(participant_id)
    assert view is not None
    record = view.record
    capabilities = ["PUBLISH", "SUBSCRIBE"]
    await write(
        msgspec.structs.replace(record, capabilities=capabilities),
        CapabilityChange(
            at=record.issued_at, capabilities=capabilities, by="admin:other", expires_at=0
        ),
        version=view.version,
        override=CapabilityOverride(publish=True, at=record.issued_at, by="admin:other"),
    )


async def _disconnected_by_a_moderator(
    store: MappingStore, write: Any, participant_id: str
) -> None:
    await store.mark_disconnected(participant_id, Disconnect(at=0, by="admin:mod", reason="spam"))


async def _issue(client: Client, token: str, stage_arn: str) -> str:
    response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert response.status_code == 201, response.text
    participant: str = response.json()["participantId"]
    return participant


async def _stored(client: Client, participant_id: str) -> dict[str, Any]:
    response = await client.get(f"/admin/participants/{participant_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    stored: dict[str, Any] = response.json()
    return stored


def _publishes(token: str) -> bool:
    claims = jwt.decode(token, options={"verify_signature": False})
    return bool(claims["capabilities"]["allow_publish"])


async def test_an_exchange_that_lost_to_a_promotion_is_decided_again_with_it(
    client: Client,
    user_token: MintUserToken,
    stage_arn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    me = user_token("viewer-1")
    participant = await _issue(client, me, stage_arn)
    _meanwhile(monkeypatch, client, _promoted_by_another_admin, times=1)

    response = await client.post(f"{URL}/{participant}/exchange", json={}, headers=bearer(me))

    stored = await _stored(client, participant)
    assert response.status_code == 200, response.text
    assert _publishes(response.json()["token"])
    assert [(h["by"], h["version"]) for h in stored["capabilityHistory"]] == [
        ("admin:other", 1),
        ("exchange", 2),
    ]
    assert stored["capabilities"] == ["PUBLISH", "SUBSCRIBE"]
    assert stored["publishOverride"] is True


async def test_a_demotion_that_lost_to_a_promotion_is_written_after_it(
    client: Client,
    user_token: MintUserToken,
    stage_arn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    participant = await _issue(client, user_token("viewer-1"), stage_arn)
    _meanwhile(monkeypatch, client, _promoted_by_another_admin, times=1)

    response = await client.post(
        f"/admin/participants/{participant}/capabilities", json={"publish": False}, headers=ADMIN
    )

    stored = await _stored(client, participant)
    assert response.status_code == 200, response.text
    assert not _publishes(response.json()["token"])
    assert [(h["version"], h["capabilities"]) for h in stored["capabilityHistory"]] == [
        (1, ["PUBLISH", "SUBSCRIBE"]),
        (2, ["SUBSCRIBE"]),
    ]
    assert stored["capabilities"] == ["SUBSCRIBE"]
    assert stored["publishOverride"] is False


@pytest.mark.parametrize("route", ["exchange", "capabilities"])
async def test_a_change_that_keeps_losing_is_a_409_that_changed_nothing(
    client: Client,
    user_token: MintUserToken,
    stage_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
) -> None:
    me = user_token("viewer-1")
    participant = await _issue(client, me, stage_arn)
    _meanwhile(monkeypatch, client, _promoted_by_another_admin, times=CHANGE_ATTEMPTS)

    if route == "exchange":
        response = await client.post(f"{URL}/{participant}/exchange", json={}, headers=bearer(me))
    else:
        response = await client.post(
            f"/admin/participants/{participant}/capabilities",
            json={"publish": False},
            headers=ADMIN,
        )

    stored = await _stored(client, participant)
    assert response.status_code == 409, response.text
    assert response.json()["type"].endswith("changed-concurrently")
    assert "retry" in response.json()["detail"]
    assert "token" not in response.json()
    assert {h["by"] for h in stored["capabilityHistory"]} == {"admin:other"}
    assert stored["version"] == CHANGE_ATTEMPTS
    assert stored["publishOverride"] is True


@pytest.mark.parametrize("route", ["exchange", "capabilities"])
async def test_a_participant_disconnected_during_a_change_gets_no_token(
    client: Client,
    user_token: MintUserToken,
    stage_arn: str,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
) -> None:
    """The moderator's disconnect lands after the change read the participant: before, the
    change was written and its token handed out all the same."""
    me = user_token("viewer-1")
    participant = await _issue(client, me, stage_arn)
    _meanwhile(monkeypatch, client, _disconnected_by_a_moderator, times=1)

    if route == "exchange":
        response = await client.post(f"{URL}/{participant}/exchange", json={}, headers=bearer(me))
    else:
        response = await client.post(
            f"/admin/participants/{participant}/capabilities",
            json={"publish": True},
            headers=ADMIN,
        )

    stored = await _stored(client, participant)
    assert response.status_code == 403, response.text
    assert "disconnected" in response.json()["detail"]
    assert stored["capabilityHistory"] == []
    assert stored["publishOverride"] is None
    assert stored["capabilities"] == ["SUBSCRIBE"]

"""The mapping log over HTTP: one record per token, lookups, disconnects, bans, events."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import pytest
import redis as sync_redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer, join
from tests.support.redis_server import RedisProcess
from token_service.config import load_settings
from token_service.mapping.records import record_key

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"
ADMIN = bearer(ADMIN_TOKEN)
EVENTS_SECRET = "events-secret-" + "e" * 32
Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(
    make_app: Callable[..., Litestar], env: dict[str, str], store_redis_url: str | None
) -> AsyncIterator[Client]:
    extra = {
        "TOKEN_SERVICE_RATE_LIMIT_USER": "100000/second",
        "TOKEN_SERVICE_RATE_LIMIT_IP": "100000/second",
        "TOKEN_SERVICE_RATE_LIMIT_STAGE": "100000/second",
        "TOKEN_SERVICE_EVENTS_SECRET": EVENTS_SECRET,
    }
    if store_redis_url is not None:
        extra["TOKEN_SERVICE_REDIS_URL"] = store_redis_url
    app = make_app(settings=load_settings({**env, **extra}))
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def _issue(client: Client, token: str, stage_arn: str) -> dict[str, Any]:
    response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_issued_token_has_exactly_one_record_by_participant_user_and_stage(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    users = [f"user-{i}" for i in range(10)]
    tokens = {u: user_token(u) for u in users}
    issued = await asyncio.gather(
        *(_issue(client, tokens[users[i % 10]], stage_arn) for i in range(300))
    )
    ids = [body["participantId"] for body in issued]
    assert len(set(ids)) == 300
    for body in issued[:20]:
        record = await client.get(f"/admin/participants/{body['participantId']}", headers=ADMIN)
        assert record.status_code == 200
        assert record.json()["appUserId"] == body["userId"]
        assert record.json()["stageArn"] == stage_arn
    by_user: list[str] = []
    for user in users:
        cursor = None
        while True:
            query = f"?limit=7&cursor={cursor}" if cursor else "?limit=7"
            page = (
                await client.get(f"/admin/users/{user}/participants{query}", headers=ADMIN)
            ).json()
            by_user += [p["participantId"] for p in page["participants"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
    assert sorted(by_user) == sorted(ids)
    by_stage = (
        await client.get(
            "/admin/participants", params={"stageArn": stage_arn, "limit": 500}, headers=ADMIN
        )
    ).json()["participants"]
    assert sorted(p["participantId"] for p in by_stage) == sorted(ids)


async def test_record_holds_the_mapping_but_never_the_token(
    client: Client, user_token: MintUserToken, stage_arn: str, signing_key: Any
) -> None:
    body = await _issue(client, user_token("sam"), stage_arn)
    record = await client.get(f"/admin/participants/{body['participantId']}", headers=ADMIN)
    data = record.json()
    assert data["appUserId"] == "sam"
    assert data["capabilities"] == ["SUBSCRIBE"]
    assert data["signer"] == "local"
    assert data["keyArn"] == signing_key.arn
    assert data["expirationTime"] == body["expirationTime"]
    assert data["requestId"]
    assert body["token"] not in record.text


async def test_users_participants_come_newest_first(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    first = await _issue(client, user_token("order"), stage_arn)
    await asyncio.sleep(1.05)
    second = await _issue(client, user_token("order"), stage_arn)
    page = (await client.get("/admin/users/order/participants", headers=ADMIN)).json()
    assert [p["participantId"] for p in page["participants"]] == [
        second["participantId"],
        first["participantId"],
    ]


async def test_unknown_participant_is_404(client: Client) -> None:
    assert (await client.get("/admin/participants/Nope123", headers=ADMIN)).status_code == 404


async def test_mapping_routes_need_the_admin_token(
    client: Client, user_token: MintUserToken
) -> None:
    response = await client.get("/admin/users/u/participants", headers=bearer(user_token()))
    assert response.status_code == 401


async def test_disconnect_ends_a_joined_participant_and_records_who_and_why(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any, ivs_client: Any
) -> None:
    body = await _issue(client, user_token("troll"), stage_arn)
    assert join(emulator, body["token"]).status_code == 200
    response = await client.post(
        f"/admin/participants/{body['participantId']}/disconnect",
        json={"reason": "spam"},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["ivsResult"] == "disconnected"
    assert result["participant"]["disconnected"]["reason"] == "spam"
    assert result["participant"]["disconnected"]["by"].startswith("admin:")
    assert ADMIN_TOKEN not in response.text
    # The session ended with its last participant: find it among the stage's sessions.
    session = ivs_client.list_stage_sessions(stageArn=stage_arn)["stageSessions"][0]["sessionId"]
    state = ivs_client.get_participant(
        stageArn=stage_arn, sessionId=session, participantId=body["participantId"]
    )["participant"]["state"]
    assert state == "DISCONNECTED"


async def test_ban_refuses_new_tokens_and_disconnects_live_participants(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any, ivs_client: Any
) -> None:
    live = await _issue(client, user_token("banned-user"), stage_arn)
    assert join(emulator, live["token"]).status_code == 200
    created = await client.post(
        "/admin/bans", json={"userId": "banned-user", "reason": "abuse"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    assert created.json()["disconnects"]["total"] == 1
    status = await _ban_finished(client, created.json()["ban"]["id"])
    assert status["participants"] == [
        {"participantId": live["participantId"], "result": "disconnected"}
    ]
    refused = await client.post(
        URL, json={"stageArn": stage_arn}, headers=bearer(user_token("banned-user"))
    )
    assert refused.status_code == 403
    assert "banned" in refused.json()["detail"]
    # The session ended with its last participant: find it among the stage's sessions.
    session = ivs_client.list_stage_sessions(stageArn=stage_arn)["stageSessions"][0]["sessionId"]
    participants = ivs_client.list_participants(stageArn=stage_arn, sessionId=session)
    states = {p["participantId"]: p["state"] for p in participants["participants"]}
    assert states[live["participantId"]] == "DISCONNECTED"
    # Someone else is unaffected.
    assert (await _issue(client, user_token("fine-user"), stage_arn))["participantId"]


async def _ban_finished(client: Client, ban_id: str) -> dict[str, Any]:
    """`GET /admin/bans/{id}` once none of the ban's disconnects is pending (the app's
    worker does them in the background)."""
    deadline = time.monotonic() + 30
    while True:
        answer = await client.get(f"/admin/bans/{ban_id}", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["disconnects"]["pending"] == 0 or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def test_a_ban_answers_with_its_disconnects_and_shows_them_done_once_done(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any
) -> None:
    for _ in range(3):
        joined = await _issue(client, user_token("three-live"), stage_arn)
        assert join(emulator, joined["token"]).status_code == 200
    await _issue(client, user_token("three-live"), stage_arn)  # never joined
    created = await client.post(
        "/admin/bans", json={"userId": "three-live", "reason": "r"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    # Four live (unexpired, not disconnected): three joined, one that never joined.
    assert created.json()["disconnects"]["total"] == 4
    finished = await _ban_finished(client, created.json()["ban"]["id"])
    assert finished["disconnects"] == {
        "status": "done",
        "total": 4,
        "pending": 0,
        "disconnected": 3,
        "notConnected": 1,
        "failed": 0,
        "cancelled": 0,
    }
    listed = (await client.get("/admin/bans", headers=ADMIN)).json()["bans"]
    assert [b["disconnects"] for b in listed] == [finished["disconnects"]]


async def test_a_ban_asked_again_while_in_force_is_200_with_the_same_ban(client: Client) -> None:
    body = {"userId": "twice", "reason": "r"}
    first = await client.post("/admin/bans", json=body, headers=ADMIN)
    again = await client.post("/admin/bans", json=body, headers=ADMIN)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["ban"] == first.json()["ban"]
    assert len((await client.get("/admin/bans", headers=ADMIN)).json()["bans"]) == 1


async def test_a_ban_with_a_reason_longer_than_ivs_takes_still_disconnects(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any
) -> None:
    """IVS refuses a DisconnectParticipant reason over 128 characters; a ban's may be 512.
    Before, such a ban was stored and then answered 400 with the participant connected."""
    live = await _issue(client, user_token("long-reason"), stage_arn)
    assert join(emulator, live["token"]).status_code == 200
    created = await client.post(
        "/admin/bans", json={"userId": "long-reason", "reason": "r" * 512}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    finished = await _ban_finished(client, created.json()["ban"]["id"])
    assert finished["disconnects"]["disconnected"] == 1


async def test_the_status_of_a_ban_not_in_force_is_404(client: Client) -> None:
    assert (await client.get("/admin/bans/ban_0000", headers=ADMIN)).status_code == 404


async def test_a_ban_naming_no_issuer_with_one_way_to_sign_in_is_of_every_issuer(
    client: Client,
) -> None:
    """The contract before bans had an issuer holds where it cannot mix two users up."""
    created = await client.post(
        "/admin/bans", json={"userId": "no-issuer-named", "reason": "r"}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    assert created.json()["ban"]["issuer"] == "*"


@pytest.mark.parametrize("user_id", ["a%00b", "a%0Ab", "%C2%85"])
async def test_a_lookup_of_a_user_id_no_app_user_can_have_is_a_400_naming_it(
    client: Client, user_id: str
) -> None:
    response = await client.get(f"/admin/users/{user_id}/participants", headers=ADMIN)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["userId"]


async def test_a_stage_ban_only_refuses_that_stage(
    client: Client, user_token: MintUserToken, stage_arn: str, ivs_client: Any
) -> None:
    other = ivs_client.create_stage(name="other")["stage"]["arn"]
    await client.post(
        "/admin/bans",
        json={"userId": "u-stage", "stageArn": stage_arn, "reason": "r"},
        headers=ADMIN,
    )
    refused = await client.post(
        URL, json={"stageArn": stage_arn}, headers=bearer(user_token("u-stage"))
    )
    assert refused.status_code == 403
    assert (await _issue(client, user_token("u-stage"), other))["stageArn"] == other


async def test_a_lifted_ban_lets_the_user_back(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    ban = (
        await client.post("/admin/bans", json={"userId": "u-lift", "reason": "r"}, headers=ADMIN)
    ).json()["ban"]
    listed = (await client.get("/admin/bans", headers=ADMIN)).json()["bans"]
    assert [b["id"] for b in listed] == [ban["id"]]
    assert (await client.delete(f"/admin/bans/{ban['id']}", headers=ADMIN)).status_code == 200
    assert (await _issue(client, user_token("u-lift"), stage_arn))["userId"] == "u-lift"


async def test_a_ban_that_has_ended_no_longer_refuses(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    # Whole seconds on the wire: at least 3 s ahead, so a busy machine cannot see it end
    # before the refused request is even made.
    ends = int(time.time()) + 4
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends))
    await client.post(
        "/admin/bans", json={"userId": "u-until", "reason": "r", "until": until}, headers=ADMIN
    )
    refused = await client.post(
        URL, json={"stageArn": stage_arn}, headers=bearer(user_token("u-until"))
    )
    assert refused.status_code == 403
    await asyncio.sleep(max(0.0, ends - time.time()) + 0.2)
    assert (await _issue(client, user_token("u-until"), stage_arn))["userId"] == "u-until"


@pytest.mark.parametrize(
    ("until", "why"),
    [
        ("", "empty: was taken as no end, a permanent ban"),
        ("2026-12-01", "a date without a time"),
        ("2026-12-01T00:00:00", "a time without an offset"),
        ("next week", "not a time"),
        ("9999-12-31T23:59:59-01:00", "after 9999-12-31T23:59:59Z, which cannot be shown back"),
    ],
)
async def test_a_ban_until_anything_but_an_rfc3339_date_time_is_400_and_no_ban(
    client: Client, until: str, why: str
) -> None:
    response = await client.post(
        "/admin/bans", json={"userId": "u-bad-until", "reason": "r", "until": until}, headers=ADMIN
    )
    assert response.status_code == 400, why
    assert response.json()["errors"][0]["field"] == "until"
    assert (await client.get("/admin/bans", headers=ADMIN)).json()["bans"] == []


async def test_a_ban_until_a_time_already_past_is_400_not_a_redis_error(client: Client) -> None:
    # Redis refuses SET ... EXAT with a time before 1970 (the 503 the fuzzer found); a ban
    # that has already ended is refused whatever the store.
    for until in ("0427-08-13T22:28:38.3-18:58", "2000-01-01T00:00:00Z"):
        response = await client.post(
            "/admin/bans", json={"userId": "u-past", "reason": "r", "until": until}, headers=ADMIN
        )
        assert response.status_code == 400, until
        assert response.json()["errors"] == [
            {"field": "until", "message": "the ban would have ended"}
        ]


async def test_participants_since_a_time_before_1970_lists_them_all(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    pid = (await _issue(client, user_token("u-since"), stage_arn))["participantId"]
    response = await client.get(
        "/admin/participants",
        params={"stageArn": stage_arn, "since": "0114-01-14T05:20:54-15:45"},
        headers=ADMIN,
    )
    assert response.status_code == 200
    assert [p["participantId"] for p in response.json()["participants"]] == [pid]


async def test_participants_of_a_stage_without_its_arn_are_400(client: Client) -> None:
    response = await client.get("/admin/participants", headers=ADMIN)
    assert response.status_code == 400


async def test_participants_of_a_malformed_stage_arn_are_400_naming_it(client: Client) -> None:
    response = await client.get(
        "/admin/participants", params={"stageArn": "arn:aws:ivs:x"}, headers=ADMIN
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["stageArn"]


async def test_the_former_stage_url_answers_as_the_new_one_and_names_it(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    await _issue(client, user_token("u-former"), stage_arn)
    query = {"stageArn": stage_arn, "limit": "5"}
    new = await client.get("/admin/participants", params=query, headers=ADMIN)
    former = await client.get(
        f"/admin/stages/{stage_arn}/participants", params={"limit": "5"}, headers=ADMIN
    )
    assert former.status_code == new.status_code == 200
    assert former.json() == new.json()
    assert former.headers["Deprecation"] == "@1796515200"
    successor = "/admin/participants?" + urlencode(query)
    assert former.headers["Link"] == f'<{successor}>; rel="successor-version"'
    assert "Deprecation" not in new.headers


async def test_the_former_stage_urls_successor_names_the_paths_stage_only(
    client: Client, stage_arn: str
) -> None:
    response = await client.get(
        f"/admin/stages/{stage_arn}/participants",
        params={"stageArn": "another", "limit": "5"},
        headers=ADMIN,
    )
    assert response.status_code == 200
    successor = "/admin/participants?" + urlencode({"stageArn": stage_arn, "limit": "5"})
    assert response.headers["Link"] == f'<{successor}>; rel="successor-version"'


async def test_the_former_stage_url_without_participants_is_404(
    client: Client, stage_arn: str
) -> None:
    response = await client.get(f"/admin/stages/{stage_arn}", headers=ADMIN)
    assert response.status_code == 404


async def test_events_without_the_secret_are_401_whatever_the_body(client: Client) -> None:
    # The secret is checked before the body is read: an anonymous caller learns no schema.
    response = await client.post("/v1/ivs-events", content=b"{not json")
    assert response.status_code == 401


async def test_an_event_that_is_not_an_eventbridge_event_is_400(client: Client) -> None:
    response = await client.post("/v1/ivs-events", json={"id": "e"}, headers=bearer(EVENTS_SECRET))
    assert response.status_code == 400
    assert response.json()["detail"] == "not an EventBridge event"


def _event(
    event_id: str, name: str, at: str, participant_id: str, stage_arn: str
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "IVS Stage Update",
        "source": "aws.ivs",
        "account": "123456789012",
        "time": at,
        "region": "us-east-1",
        "resources": [stage_arn],
        "detail": {
            "session_id": "st-1",
            "event_name": name,
            "user_id": "u",
            "participant_id": participant_id,
        },
    }


async def test_events_attach_in_time_order_whatever_the_delivery_order(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    pid = (await _issue(client, user_token("evt"), stage_arn))["participantId"]
    headers = bearer(EVENTS_SECRET)
    later = _event("e-2", "Participant Unpublished", "2026-11-28T10:05:00Z", pid, stage_arn)
    earlier = _event("e-1", "Participant Published", "2026-11-28T10:00:00Z", pid, stage_arn)
    for event in (later, earlier, later):
        response = await client.post("/v1/ivs-events", json=event, headers=headers)
        assert response.status_code == 202
    assert response.json()["result"] == "duplicate"
    events = (await client.get(f"/admin/participants/{pid}", headers=ADMIN)).json()["events"]
    assert [(e["id"], e["name"]) for e in events] == [
        ("e-1", "Participant Published"),
        ("e-2", "Participant Unpublished"),
    ]


async def test_events_need_the_events_secret(client: Client, stage_arn: str) -> None:
    event = _event("e-x", "Participant Published", "2026-11-28T10:00:00Z", "p", stage_arn)
    assert (await client.post("/v1/ivs-events", json=event)).status_code == 401
    wrong = bearer("w" * 40)
    assert (await client.post("/v1/ivs-events", json=event, headers=wrong)).status_code == 401


async def test_an_event_for_an_unknown_participant_is_accepted_and_said_so(
    client: Client, stage_arn: str
) -> None:
    event = _event("e-u", "Participant Published", "2026-11-28T10:00:00Z", "ghost", stage_arn)
    response = await client.post("/v1/ivs-events", json=event, headers=bearer(EVENTS_SECRET))
    assert response.json() == {"result": "unknown-participant"}


async def test_admin_actions_are_audited_without_secrets(
    client: Client, user_token: MintUserToken, stage_arn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="token_service.audit")
    await client.post("/admin/bans", json={"userId": "audited", "reason": "r"}, headers=ADMIN)
    lines = [r for r in caplog.records if r.name == "token_service.audit"]
    assert any(getattr(r, "event", None) == "ban_created" for r in lines)
    assert all(ADMIN_TOKEN not in json.dumps(r.__dict__, default=str) for r in lines)


async def test_redis_failure_at_the_moment_of_writing_gives_503_and_no_token(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    server = RedisProcess().start()
    try:
        app = make_app(settings=load_settings({**env, "TOKEN_SERVICE_REDIS_URL": server.url}))
        async with AsyncTestClient(app=app) as client:
            assert (await _issue(client, user_token(), stage_arn))["token"]
            server.stop()
            response = await client.post(
                URL, json={"stageArn": stage_arn}, headers=bearer(user_token())
            )
        assert response.status_code == 503
        assert "token" not in response.json()
        assert response.headers["retry-after"]
    finally:
        server.close()


async def test_outbox_mode_keeps_issuing_and_writes_the_records_when_redis_returns(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    server = RedisProcess().start()
    try:
        settings = load_settings(
            {
                **env,
                "TOKEN_SERVICE_REDIS_URL": server.url,
                "TOKEN_SERVICE_MAPPING_ON_REDIS_ERROR": "outbox",
            }
        )
        async with AsyncTestClient(app=make_app(settings=settings)) as client:
            await _issue(client, user_token(), stage_arn)
            server.stop()
            during = await _issue(client, user_token(), stage_arn)
            server.start()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                found = await client.get(
                    f"/admin/participants/{during['participantId']}", headers=ADMIN
                )
                if found.status_code == 200:
                    break
                await asyncio.sleep(0.3)
            assert found.status_code == 200, "the deferred record never reached Redis"
    finally:
        server.close()


async def test_admin_lookup_while_redis_is_down_is_503_not_500(
    make_app: Callable[..., Litestar], env: dict[str, str]
) -> None:
    server = RedisProcess().start()
    try:
        app = make_app(settings=load_settings({**env, "TOKEN_SERVICE_REDIS_URL": server.url}))
        async with AsyncTestClient(app=app) as client:
            server.stop()
            response = await client.get("/admin/participants/AnyId123", headers=ADMIN)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
    finally:
        server.close()


async def test_the_token_path_reaches_redis_over_the_services_own_lane_connection(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    redis_url: str,
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    sync_redis.Redis.from_url(redis_url).flushdb()
    app = make_app(settings=load_settings({**env, "TOKEN_SERVICE_REDIS_URL": redis_url}))
    async with AsyncTestClient(app=app) as client:
        # Two: the first may load the script (EVAL) into a Redis that lacks it.
        await _issue(client, user_token("lane-user"), stage_arn)
        body = await _issue(client, user_token("lane-user"), stage_arn)
        clients = sync_redis.Redis.from_url(redis_url).client_list()

    lanes = [c for c in clients if c["name"] == "token-service-lane"]
    assert [c["cmd"] for c in lanes] == ["evalsha"]
    assert sync_redis.Redis.from_url(redis_url).exists(record_key(body["participantId"])) == 1

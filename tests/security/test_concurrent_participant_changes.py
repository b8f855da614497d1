"""One participant changed by two at once ends in one consistent state (issue 20, item 5).

Two real `token-service serve` processes share one real Redis, as two replicas behind a load
balancer do. In each of 40 trials a viewer gets a token from one of them; then three changes
of that one participant are sent at the same moment: an admin's promotion (`{"publish":
true}`) to one replica, an admin's demotion (`{"publish": false}`) to the other, and the
participant's own exchange to either. When all three have answered, the stored participant
(`GET /admin/participants/{id}`) must be one state, the last change written:

- its `publishOverride` agrees with its `capabilities` (true: PUBLISH among them; false: not);
- its `capabilities` and expiry are those of the last `capabilityHistory` entry (the highest
  `version`), and the versions count the changes written, 1 by 1;
- every token answered (200) is one of the history's entries, and every entry one answered
  token: no token handed out whose capabilities were never the stored ones.

Before the fix, a promotion stored its override, then signed and wrote the record, as separate
steps; a demotion (or an exchange) between them left an override that contradicted the stored
capabilities. Each check is made in every trial; a failure lists the trials that broke it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest

from tests.http.conftest import SHARED_SECRET, bearer
from tests.security.conftest import serving_logged
from token_service.auth import mint_user_token

URL = "/v1/participant-tokens"
ADMIN_TOKEN = "races-admin-token-0123456789"
ADMIN = bearer(ADMIN_TOKEN)
TRIALS = 40


@dataclass(frozen=True)
class Answer:
    """One change's answer: who asked, its status and, for a 200, the token's terms."""

    change: str
    status: int
    capabilities: tuple[str, ...] | None
    expiration_time: str | None


@dataclass(frozen=True)
class Trial:
    number: int
    answers: tuple[Answer, ...]
    stored: dict[str, Any]


def _env(module_env: dict[str, str], redis_url: str) -> dict[str, str]:
    return module_env | {
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
        "TOKEN_SERVICE_REDIS_URL": redis_url,
        # Every request comes from 127.0.0.1: the limits are not what is tested here.
        "TOKEN_SERVICE_RATE_LIMIT_USER": "1000/second",
        "TOKEN_SERVICE_RATE_LIMIT_IP": "1000/second",
        "TOKEN_SERVICE_RATE_LIMIT_STAGE": "1000/second",
    }


@pytest.fixture(scope="module")
def replicas(
    module_env: dict[str, str], module_redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Two processes, one Redis. Their logs go to files (a pipe nobody reads would fill with
    a line per token and stall them)."""
    env = _env(module_env, module_redis_url)
    logs = tmp_path_factory.mktemp("replicas")
    with (
        serving_logged(env, logs / "first.log") as first,
        serving_logged(env, logs / "second.log") as second,
    ):
        yield first, second


def _user(trial: int) -> dict[str, str]:
    return bearer(mint_user_token(SHARED_SECRET.encode(), sub=f"racer-{trial}"))


def _terms(token: str) -> tuple[tuple[str, ...], str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    allowed = claims["capabilities"]
    capabilities = tuple(
        name
        for name, claim in (("PUBLISH", "allow_publish"), ("SUBSCRIBE", "allow_subscribe"))
        if allowed.get(claim)
    )
    expiry = datetime.fromtimestamp(claims["exp"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return capabilities, expiry


async def _change(
    client: httpx.AsyncClient, change: str, url: str, body: dict[str, Any], headers: Any
) -> Answer:
    response = await client.post(url, json=body, headers=headers)
    if response.status_code != 200:
        return Answer(change, response.status_code, None, None)
    capabilities, expiry = _terms(response.json()["token"])
    return Answer(change, 200, capabilities, expiry)


async def _trial(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], stage_arn: str, number: int
) -> Trial:
    first, second = clients
    user = _user(number)
    issued = await first.post(URL, json={"stageArn": stage_arn}, headers=user)
    assert issued.status_code == 201, issued.text
    participant = issued.json()["participantId"]
    admin_url = f"/admin/participants/{participant}/capabilities"
    changes = [
        _change(first, "promote", admin_url, {"publish": True}, ADMIN),
        _change(second, "demote", admin_url, {"publish": False}, ADMIN),
        _change((first, second)[number % 2], "exchange", f"{URL}/{participant}/exchange", {}, user),
    ]
    # A different order of sending in each trial (the same in every run).
    random.Random(number).shuffle(changes)
    answers = await asyncio.gather(*changes)
    stored = await first.get(f"/admin/participants/{participant}", headers=ADMIN)
    assert stored.status_code == 200, stored.text
    return Trial(number=number, answers=tuple(answers), stored=stored.json())


async def _run_trials(bases: tuple[str, str], stage_arn: str) -> list[Trial]:
    async with (
        httpx.AsyncClient(base_url=bases[0], timeout=10) as first,
        httpx.AsyncClient(base_url=bases[1], timeout=10) as second,
    ):
        return [await _trial((first, second), stage_arn, n) for n in range(TRIALS)]


@pytest.fixture(scope="module")
def trials(replicas: tuple[str, str], stage_arn: str) -> list[Trial]:
    return asyncio.run(_run_trials(replicas, stage_arn))


def _history(trial: Trial) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = trial.stored["capabilityHistory"]
    return history


def _broken(trials: list[Trial], holds: Any) -> list[str]:
    return [
        f"trial {t.number}: {[(a.change, a.status, a.capabilities) for a in t.answers]} -> "
        f"override {t.stored['publishOverride']}, capabilities {t.stored['capabilities']}, "
        f"history {[(h['capabilities'], h['by'], h.get('version')) for h in _history(t)]}"
        for t in trials
        if not holds(t)
    ]


def test_every_concurrent_change_is_answered_with_a_token(trials: list[Trial]) -> None:
    """Three changes at once are within the retries: none refused, none failed."""
    assert _broken(trials, lambda t: all(a.status == 200 for a in t.answers)) == []


def test_the_stored_override_agrees_with_the_stored_capabilities(trials: list[Trial]) -> None:
    def agrees(trial: Trial) -> bool:
        override = trial.stored["publishOverride"]
        return override is None or override == ("PUBLISH" in trial.stored["capabilities"])

    assert _broken(trials, agrees) == []


def test_the_stored_capabilities_are_those_of_the_last_change_written(
    trials: list[Trial],
) -> None:
    def last_written(trial: Trial) -> bool:
        last = max(_history(trial), key=lambda h: h["version"])
        return (
            last["capabilities"] == trial.stored["capabilities"]
            and last["expirationTime"] == trial.stored["expirationTime"]
            and _history(trial)[-1] is last
        )

    assert _broken(trials, last_written) == []


def test_the_version_counts_the_changes_written_one_by_one(trials: list[Trial]) -> None:
    def counted(trial: Trial) -> bool:
        versions = [h["version"] for h in _history(trial)]
        return versions == list(range(1, len(versions) + 1)) and trial.stored["version"] == len(
            versions
        )

    assert _broken(trials, counted) == []


def test_every_token_answered_is_a_change_written_and_no_other(trials: list[Trial]) -> None:
    def one_to_one(trial: Trial) -> bool:
        answered = sorted(
            (a.capabilities, a.expiration_time) for a in trial.answers if a.status == 200
        )
        written = sorted((tuple(h["capabilities"]), h["expirationTime"]) for h in _history(trial))
        return answered == written

    assert _broken(trials, one_to_one) == []


def test_the_promotion_or_demotion_written_last_is_the_stored_override(
    trials: list[Trial],
) -> None:
    """The override is the one of the last admin change in the history."""

    def last_admin(trial: Trial) -> bool:
        admin = [h for h in _history(trial) if h["by"].startswith("admin:")]
        if not admin:
            return trial.stored["publishOverride"] is None
        return trial.stored["publishOverride"] == ("PUBLISH" in admin[-1]["capabilities"])

    assert _broken(trials, last_admin) == []

"""Settings of ivs and auto modes: the CreateParticipantToken budget, deadline, fallback."""

from __future__ import annotations

import pytest

from token_service.bootstrap.keys import check_key_ring
from token_service.config import load_settings
from token_service.domain import Rate
from token_service.errors import ConfigurationError
from token_service.ivs.budget import BudgetOnRedisError
from token_service.tokens.mode import Mode


def test_budget_defaults_stay_under_the_ivs_quota_with_a_short_wait() -> None:
    settings = load_settings({})

    assert settings.ivs.token_rate == Rate(45, 1)
    assert settings.ivs.token_max_wait_ms == 250
    assert settings.ivs.token_on_redis_error is BudgetOnRedisError.LOCAL
    assert settings.ivs.fallback_to_local is False


def test_auto_mode_is_a_mode() -> None:
    assert load_settings({"TOKEN_SERVICE_MODE": "auto"}).mode is Mode.AUTO


def test_budget_settings_are_read() -> None:
    settings = load_settings(
        {
            "TOKEN_SERVICE_IVS_TOKEN_RATE": "30/second;burst=3",
            "TOKEN_SERVICE_IVS_TOKEN_MAX_WAIT_MS": "500",
            "TOKEN_SERVICE_IVS_TOKEN_ON_REDIS_ERROR": "deny",
            "TOKEN_SERVICE_IVS_FALLBACK_TO_LOCAL": "yes",
            "TOKEN_SERVICE_IVS_DEADLINE_SECONDS": "2.5",
        }
    )

    assert settings.ivs.token_rate == Rate(30, 1, 3)
    assert settings.ivs.token_max_wait_ms == 500
    assert settings.ivs.token_on_redis_error is BudgetOnRedisError.DENY
    assert settings.ivs.fallback_to_local is True
    assert settings.ivs.deadline_seconds == 2.5


def test_budget_problems_are_reported_by_name() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(
            {
                "TOKEN_SERVICE_IVS_TOKEN_RATE": "lots",
                "TOKEN_SERVICE_IVS_TOKEN_MAX_WAIT_MS": "-1",
                "TOKEN_SERVICE_IVS_FALLBACK_TO_LOCAL": "maybe",
            }
        )

    names = " ".join(info.value.problems)
    for name in ("IVS_TOKEN_RATE", "IVS_TOKEN_MAX_WAIT_MS", "IVS_FALLBACK_TO_LOCAL"):
        assert f"TOKEN_SERVICE_{name}" in names


def test_allowing_every_call_while_redis_fails_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({"TOKEN_SERVICE_IVS_TOKEN_ON_REDIS_ERROR": "allow"})

    assert "TOKEN_SERVICE_IVS_TOKEN_ON_REDIS_ERROR" in info.value.problems[0]


@pytest.mark.parametrize("mode", ["ivs", "auto"])
def test_modes_that_can_ask_ivs_serve_without_a_signing_key(mode: str, tmp_path) -> None:
    settings = load_settings(
        {"TOKEN_SERVICE_MODE": mode, "TOKEN_SERVICE_KEYS_DIR": str(tmp_path / "none")}
    )

    check_key_ring(settings)


def test_the_disconnect_budget_defaults_under_ivs_s_five_per_second() -> None:
    rate = load_settings({}).ivs.disconnect_rate

    assert rate == Rate(4, 1)


def test_the_disconnect_budget_is_read_and_a_bad_one_reported_by_name() -> None:
    read = load_settings({"TOKEN_SERVICE_IVS_DISCONNECT_RATE": "2/second"})
    with pytest.raises(ConfigurationError) as info:
        load_settings({"TOKEN_SERVICE_IVS_DISCONNECT_RATE": "fast"})

    assert read.ivs.disconnect_rate == Rate(2, 1)
    assert "TOKEN_SERVICE_IVS_DISCONNECT_RATE" in " ".join(info.value.problems)

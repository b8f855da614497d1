"""Settings of the signing keys: store, rotation interval, refresh, margin; all problems at once."""

from __future__ import annotations

import pytest

from token_service.config import load_settings
from token_service.errors import ConfigurationError
from token_service.keys.store import KeyStoreKind


def test_key_settings_default_to_files_no_schedule_and_a_five_minute_margin() -> None:
    settings = load_settings({})
    assert settings.keys.store is KeyStoreKind.FILES
    assert settings.keys.rotation_interval_seconds is None
    assert settings.keys.read_only is False
    assert settings.keys.delete_margin_seconds == 300
    assert settings.keys.refresh_seconds == 2.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("45s", 45)]
)
def test_rotation_interval_accepts_days_hours_minutes_and_seconds(text: str, seconds: int) -> None:
    settings = load_settings({"TOKEN_SERVICE_KEY_ROTATION_INTERVAL": text})
    assert settings.keys.rotation_interval_seconds == seconds


def test_rotation_interval_off_means_no_schedule() -> None:
    settings = load_settings({"TOKEN_SERVICE_KEY_ROTATION_INTERVAL": "off"})
    assert settings.keys.rotation_interval_seconds is None


def test_secretsmanager_store_with_its_prefix_and_endpoint() -> None:
    settings = load_settings(
        {
            "TOKEN_SERVICE_KEY_STORE": "secretsmanager",
            "TOKEN_SERVICE_KEY_SECRETS_PREFIX": "prod/ivs-keys/",
            "TOKEN_SERVICE_SECRETSMANAGER_ENDPOINT_URL": "http://127.0.0.1:5000",
        }
    )
    assert settings.keys.store is KeyStoreKind.SECRETSMANAGER
    assert settings.keys.secrets_prefix == "prod/ivs-keys/"
    assert settings.keys.secretsmanager_endpoint_url == "http://127.0.0.1:5000"


def test_bad_key_settings_are_all_reported_at_once_by_name() -> None:
    with pytest.raises(ConfigurationError) as failed:
        load_settings(
            {
                "TOKEN_SERVICE_KEY_ROTATION_INTERVAL": "monthly",
                "TOKEN_SERVICE_KEY_STORE": "vault",
                "TOKEN_SERVICE_KEYS_READ_ONLY": "maybe",
                "TOKEN_SERVICE_KEY_SECRETS_PREFIX": "has space/",
                "TOKEN_SERVICE_KEY_DELETE_MARGIN_SECONDS": "-1",
            }
        )
    detail = failed.value.detail
    for name in (
        "KEY_ROTATION_INTERVAL",
        "KEY_STORE",
        "KEYS_READ_ONLY",
        "KEY_SECRETS_PREFIX",
        "KEY_DELETE_MARGIN_SECONDS",
    ):
        assert f"TOKEN_SERVICE_{name}" in detail

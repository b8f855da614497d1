"""Settings of the demo page and of CORS: when the page is on, which origins are allowed."""

from __future__ import annotations

import pytest

from token_service.config import load_settings
from token_service.errors import ConfigurationError


def test_demo_page_is_on_in_dev_mode_by_default() -> None:
    assert load_settings({}, dev=True).demo_enabled


def test_demo_page_is_off_outside_dev_mode_by_default() -> None:
    assert not load_settings({}).demo_enabled


def test_demo_page_can_be_switched_on_outside_dev_mode() -> None:
    assert load_settings({"TOKEN_SERVICE_DEMO_PAGE": "true"}).demo_enabled


def test_demo_page_can_be_switched_off_in_dev_mode() -> None:
    assert not load_settings({"TOKEN_SERVICE_DEMO_PAGE": "false"}, dev=True).demo_enabled


def test_cors_origins_are_a_comma_separated_list_without_trailing_slashes() -> None:
    settings = load_settings(
        {"TOKEN_SERVICE_CORS_ORIGINS": "https://app.example.com/, http://localhost:5173"}
    )
    assert settings.http.cors_origins == ("https://app.example.com", "http://localhost:5173")


@pytest.mark.parametrize(
    "origin",
    ["*", "https://*.example.com", "https://app.example.com/path", "app.example.com", "null"],
)
def test_anything_but_an_exact_origin_is_refused(origin: str) -> None:
    with pytest.raises(ConfigurationError, match="TOKEN_SERVICE_CORS_ORIGINS"):
        load_settings({"TOKEN_SERVICE_CORS_ORIGINS": origin})


def test_no_cors_origins_by_default() -> None:
    assert load_settings({}).http.cors_origins == ()

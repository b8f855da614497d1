"""Settings: read from a mapping, validated, every problem reported at once, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from token_service.config import Secret, check_can_serve, load_settings, read_dotenv
from token_service.domain import Rate
from token_service.errors import ConfigurationError
from token_service.policy.identity import UserIdMode
from token_service.tokens.mode import Mode

SECRET = "s" * 40


def test_defaults_need_nothing_but_give_local_mode_without_redis() -> None:
    settings = load_settings({})
    assert settings.mode is Mode.LOCAL
    assert settings.redis.url is None
    assert settings.keys.dir == Path("keys")
    assert str(settings.limits.user) == "10/minute"


def test_every_problem_is_reported_at_once_by_variable_name() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings(
            {
                "TOKEN_SERVICE_MODE": "remote",
                "TOKEN_SERVICE_AUTH_SHARED_SECRET": "short",
                "TOKEN_SERVICE_RATE_LIMIT_USER": "ten per minute",
                "TOKEN_SERVICE_REDIS_URL": "http://localhost",
            }
        )
    text = "\n".join(info.value.problems)
    assert len(info.value.problems) == 4
    for name in ("_MODE", "_AUTH_SHARED_SECRET", "_RATE_LIMIT_USER", "_REDIS_URL"):
        assert f"TOKEN_SERVICE{name}:" in text


def test_a_rejected_secret_is_never_echoed_in_the_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({"TOKEN_SERVICE_AUTH_SHARED_SECRET": "tooshort-but-secret"})
    assert "tooshort-but-secret" not in str(info.value)


def test_secret_repr_hides_the_value() -> None:
    settings = load_settings({"TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET})
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.auth.shared_secret)
    assert settings.auth.shared_secret == Secret(SECRET)


def test_secret_can_come_from_a_file_without_its_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    settings = load_settings({"TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE": str(path)})
    assert settings.auth.shared_secret is not None
    assert settings.auth.shared_secret.reveal() == SECRET


def test_secret_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigurationError, match="AUTH_SHARED_SECRET_FILE"):
        load_settings({"TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE": str(missing)})


def test_secret_and_its_file_together_are_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET)
    with pytest.raises(ConfigurationError, match="both set"):
        load_settings(
            {
                "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
                "TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE": str(path),
            }
        )


def test_oidc_requires_issuer_and_audience() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({"TOKEN_SERVICE_AUTH_JWKS_URL": "https://idp.example/jwks"})
    assert len(info.value.problems) == 2


def test_authorized_parties_are_a_comma_separated_list() -> None:
    settings = load_settings({"TOKEN_SERVICE_AUTH_AUTHORIZED_PARTIES": " spa-client, ,mobile "})
    assert settings.auth.authorized_parties == ("spa-client", "mobile")


def test_admin_tokens_are_split_on_commas_and_must_be_long() -> None:
    settings = load_settings({"TOKEN_SERVICE_ADMIN_TOKENS": "a" * 20 + ", " + "b" * 20})
    assert [t.reveal() for t in settings.admin_tokens] == ["a" * 20, "b" * 20]
    with pytest.raises(ConfigurationError, match="shorter than 16"):
        load_settings({"TOKEN_SERVICE_ADMIN_TOKENS": "short"})


def test_pseudonym_mode_needs_its_secret() -> None:
    with pytest.raises(ConfigurationError, match="USER_ID_PSEUDONYM_SECRET"):
        load_settings({"TOKEN_SERVICE_USER_ID_MODE": "pseudonym"})
    settings = load_settings(
        {
            "TOKEN_SERVICE_USER_ID_MODE": "pseudonym",
            "TOKEN_SERVICE_USER_ID_PSEUDONYM_SECRET": SECRET,
        }
    )
    assert settings.policy.user_id_mode is UserIdMode.PSEUDONYM


def test_region_comes_from_aws_region_unless_overridden() -> None:
    assert load_settings({"AWS_REGION": "eu-west-1"}).ivs.region == "eu-west-1"
    assert (
        load_settings(
            {"AWS_REGION": "eu-west-1", "TOKEN_SERVICE_AWS_REGION": "ap-south-1"}
        ).ivs.region
        == "ap-south-1"
    )


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("10/minute", 10, 60), ("5/second", 5, 1), ("100/hour", 100, 3600), (" 7 / day ", 7, 86400)],
)
def test_rate_parses_count_and_period(text: str, count: int, period: int) -> None:
    assert Rate.parse(text) == Rate(count, period)


@pytest.mark.parametrize("text", ["0/minute", "10/fortnight", "ten/minute", "10"])
def test_rate_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|at least"):
        Rate.parse(text)


def test_serving_without_authentication_is_refused_outside_dev() -> None:
    with pytest.raises(ConfigurationError, match="no app-user authentication"):
        check_can_serve(load_settings({}))
    check_can_serve(load_settings({}, dev=True))


def test_dotenv_reads_names_values_and_strips_quotes(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("# comment\nexport A=1\nB='two words'\nC=\"3\"\n\nnot a line\n")
    assert read_dotenv(path) == {"A": "1", "B": "two words", "C": "3"}

"""app.core.config.Settings, read from the environment (never from a .env file here)."""

import pytest
from pydantic import ValidationError

from app.core.config import Settings

LONG_KEY = "k" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the shell running the suite exports must not decide these tests.
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def load() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_without_a_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="SECRET_KEY"):
        load()


def test_production_with_a_short_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 31)

    with pytest.raises(ValidationError, match="SECRET_KEY"):
        load()


def test_production_with_a_long_enough_key_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", LONG_KEY)

    settings = load()

    assert settings.environment == "production"
    assert settings.secret_key == LONG_KEY


def test_insecure_cookies_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", LONG_KEY)
    monkeypatch.setenv("COOKIE_SECURE", "false")

    with pytest.raises(ValidationError, match="COOKIE_SECURE"):
        load()


@pytest.mark.parametrize(
    ("raw", "origins"),
    [
        ("a,b", ["a", "b"]),
        (
            " http://a.example/ , http://b.example:3000 ,",
            ["http://a.example", "http://b.example:3000"],
        ),
    ],
)
def test_cors_origins_are_split_on_commas(
    monkeypatch: pytest.MonkeyPatch, raw: str, origins: list[str]
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", raw)

    assert load().cors_origins == origins


@pytest.mark.parametrize("raw", ["*", "http://a.example,*"])
def test_a_cors_wildcard_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CORS_ORIGINS", raw)

    with pytest.raises(ValidationError, match="CORS_ORIGINS"):
        load()


@pytest.mark.parametrize(
    ("environment", "secure"),
    [("development", False), ("test", True), ("production", True)],
)
def test_cookie_secure_defaults_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, environment: str, secure: bool
) -> None:
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("SECRET_KEY", LONG_KEY)

    assert load().cookie_secure is secure


def test_an_explicit_cookie_secure_wins_outside_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("COOKIE_SECURE", "true")

    assert load().cookie_secure is True


def test_samesite_none_needs_secure_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("COOKIE_SAMESITE", "none")

    with pytest.raises(ValidationError, match="COOKIE_SAMESITE"):
        load()

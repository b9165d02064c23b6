"""decode_access_token remembers what it verified about a token (its signature and claims,
keyed by the token and the secret key) but never that it is still valid: expiry is checked on
every use, and a token that failed is checked again the next time.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jose import jwt

import app.core.security as security
from app.core.config import Settings
from app.core.security import InvalidToken, create_access_token, decode_access_token

KEY_A = "token-cache-secret-key-a-0123456789abcdef"
KEY_B = "token-cache-secret-key-b-0123456789abcdef"


def _settings(secret_key: str = KEY_A) -> Settings:
    return Settings(_env_file=None, environment="test", secret_key=secret_key)  # type: ignore[call-arg]


def _clock_at(moment: datetime) -> type[datetime]:
    class _Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "_Clock":
            return cls.fromtimestamp(moment.timestamp(), tz)

    return _Clock


def _token(user_id: int = 7, token_version: int = 3, settings: Settings | None = None) -> str:
    return create_access_token(user_id, token_version, settings or _settings()).token


def test_a_fresh_token_is_accepted_every_time() -> None:
    settings = _settings()
    token = _token(settings=settings)
    issued = jwt.get_unverified_claims(token)

    first = decode_access_token(token, settings)
    second = decode_access_token(token, settings)

    assert first == second
    assert (first.user_id, first.token_version, first.jti) == (7, 3, issued["jti"])
    assert first.expires_at == datetime.fromtimestamp(issued["exp"], UTC)


def test_an_accepted_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings()
    token = _token(settings=settings)
    expires_at = decode_access_token(token, settings).expires_at  # verified, and cached

    monkeypatch.setattr(security, "datetime", _clock_at(expires_at - timedelta(seconds=1)))
    assert decode_access_token(token, settings).expires_at == expires_at

    for moment in (expires_at, expires_at + timedelta(seconds=1), expires_at + timedelta(days=400)):
        monkeypatch.setattr(security, "datetime", _clock_at(moment))
        with pytest.raises(InvalidToken):
            decode_access_token(token, settings)
        with pytest.raises(InvalidToken):
            decode_access_token(token, settings)

    # The refusals were about the time, not the token: back before expiry it is good again.
    monkeypatch.undo()
    assert decode_access_token(token, settings).expires_at == expires_at


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def _tampered_variants(token: str) -> dict[str, str]:
    header, payload, signature = token.split(".")
    claims = jwt.get_unverified_claims(token)
    other_claims = jwt.encode(claims | {"sub": "8"}, "not the key", algorithm="HS256")
    return {
        "signature flipped": ".".join([header, payload, _flip(signature, len(signature) // 2)]),
        "signature cut": ".".join([header, payload, signature[:-4]]),
        "no signature": f"{header}.{payload}.",
        "payload flipped": ".".join([header, _flip(payload, len(payload) // 2), signature]),
        "another user's payload": ".".join([header, other_claims.split(".")[1], signature]),
        "trailing garbage": token + "x",
        "whitespace": f" {token}",
    }


def test_a_tampered_token_is_refused_every_time_even_after_the_real_one_was_accepted() -> None:
    settings = _settings()
    token = _token(settings=settings)
    assert decode_access_token(token, settings).user_id == 7

    accepted = []
    for name, variant in _tampered_variants(token).items():
        for attempt in (1, 2, 3):
            try:
                decode_access_token(variant, settings)
            except InvalidToken:
                continue
            accepted.append((name, attempt))

    assert accepted == []

    assert decode_access_token(token, settings).user_id == 7


def test_the_cache_is_keyed_by_the_secret_key_too() -> None:
    under_a, under_b = _settings(KEY_A), _settings(KEY_B)
    token_a = _token(settings=under_a)
    token_b = _token(user_id=8, settings=under_b)

    assert decode_access_token(token_a, under_a).user_id == 7
    assert decode_access_token(token_b, under_b).user_id == 8
    for _ in range(2):
        with pytest.raises(InvalidToken):
            decode_access_token(token_a, under_b)
        with pytest.raises(InvalidToken):
            decode_access_token(token_b, under_a)

    # Refusing under the other key took nothing away under the right one.
    assert decode_access_token(token_a, under_a).user_id == 7
    assert decode_access_token(token_b, under_b).user_id == 8


def test_a_token_refused_as_expired_is_not_remembered_as_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The opposite mistake: caching a refusal would lock out a token whose first use happened
    # on a machine whose clock ran ahead.
    settings = _settings()
    token = _token(settings=settings)
    expires_at = datetime.fromtimestamp(jwt.get_unverified_claims(token)["exp"], UTC)

    monkeypatch.setattr(security, "datetime", _clock_at(expires_at + timedelta(minutes=1)))
    with pytest.raises(InvalidToken):
        decode_access_token(token, settings)
    monkeypatch.undo()

    assert decode_access_token(token, settings).expires_at == expires_at

"""Passwords past 1024 bytes are refused before any hashing, wherever a password is taken."""

from collections.abc import Callable
from typing import Any

import pytest
from httpx import AsyncClient
from passlib.context import CryptContext
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import PASSWORD, bearer, create_user, factory_password_hash
from tests.hostile import (
    LOGIN_URL,
    REGISTER_URL,
    TOKEN_URL,
    assert_client_error,
)


@pytest.fixture
def hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password hash or verify the app runs (passlib's, which it hashes with), by name."""
    factory_password_hash()  # the test users' shared hash, made once, before counting
    calls: list[str] = []
    for name in ("hash", "verify"):
        real: Callable[..., Any] = getattr(CryptContext, name)

        def counting(*args: Any, _real: Callable[..., Any] = real, _name: str = name) -> Any:
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(CryptContext, name, counting)
    return calls


OVERSIZED_PASSWORDS = {
    "1025-ascii": "x" * 1025,
    "1026-bytes-513-chars": "é" * 513,
    "4096-bytes-1024-chars": "😀" * 1024,
    "huge": "x" * 200_000,
}


@pytest.mark.parametrize("password", OVERSIZED_PASSWORDS.values(), ids=OVERSIZED_PASSWORDS.keys())
async def test_passwords_over_1024_bytes_are_422_and_never_hashed(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    hashing: list[str],
    password: str,
) -> None:
    user = await create_user(session)
    assert len(password.encode()) > 1024

    responses = {
        "register": await client.post(
            REGISTER_URL, json={"email": "big@example.com", "password": password}
        ),
        "login": await client.post(LOGIN_URL, json={"email": user.email, "password": password}),
        "token": await client.post(TOKEN_URL, data={"username": user.email, "password": password}),
        "change-new": await client.post(
            "/api/users/me/password",
            json={"current_password": PASSWORD, "new_password": password},
            headers=bearer(user, settings),
        ),
        "change-current": await client.post(
            "/api/users/me/password",
            json={"current_password": password, "new_password": "long enough"},
            headers=bearer(user, settings),
        ),
    }

    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 422)
    for response in responses.values():
        assert_client_error(response, 422)
    assert hashing == []


async def test_a_1024_byte_password_is_still_hashed(
    client: AsyncClient, hashing: list[str]
) -> None:
    # The other side of the limit, so the test above cannot pass by refusing everything.
    response = await client.post(
        REGISTER_URL, json={"email": "limit@example.com", "password": "é" * 512}
    )

    assert response.status_code == 201
    assert hashing == ["hash"]

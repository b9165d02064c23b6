"""Every token that must not work answers the same 401, whatever is wrong with it."""

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from jose import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import User
from tests.factories import access_token, bearer, create_user

URL = "/api/users/me"
INVALID_SESSION = {"detail": "Invalid or expired token", "success": False}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _claims(user: User, settings: Settings) -> dict[str, Any]:
    # Start from what the app itself issues, so each variant differs in one respect only.
    return jwt.get_unverified_claims(access_token(user, settings))


def _signed(claims: dict[str, Any], key: str) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


def _expired(user: User, settings: Settings) -> str:
    now = datetime.now(UTC)
    claims = _claims(user, settings) | {
        "iat": int((now - timedelta(hours=2)).timestamp()),
        "exp": int((now - timedelta(minutes=5)).timestamp()),
    }
    return _signed(claims, settings.secret_key)


def _tampered(user: User, settings: Settings) -> str:
    header, payload, signature = access_token(user, settings).split(".")
    middle = len(payload) // 2
    flipped = "A" if payload[middle] != "A" else "B"
    return ".".join([header, payload[:middle] + flipped + payload[middle + 1 :], signature])


def _wrong_key(user: User, settings: Settings) -> str:
    return _signed(_claims(user, settings), "another-secret-key-that-is-long-enough-987654")


def _without_exp(user: User, settings: Settings) -> str:
    claims = _claims(user, settings)
    del claims["exp"]
    return _signed(claims, settings.secret_key)


def _alg_none(user: User, settings: Settings) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims(user, settings)).encode())
    return f"{header}.{payload}."


def _non_numeric_sub(user: User, settings: Settings) -> str:
    return _signed(_claims(user, settings) | {"sub": "admin"}, settings.secret_key)


def _not_a_jwt(_user: User, _settings: Settings) -> str:
    return "not-a-token"


BAD_TOKENS: dict[str, Callable[[User, Settings], str]] = {
    "expired": _expired,
    "tampered": _tampered,
    "wrong-key": _wrong_key,
    "without-exp": _without_exp,
    "alg-none": _alg_none,
    "non-numeric-sub": _non_numeric_sub,
    "not-a-jwt": _not_a_jwt,
}


def assert_rejected(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == INVALID_SESSION


async def test_a_token_rebuilt_from_the_apps_own_claims_works(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    # The control for the cases below: re-signing the claims unchanged is accepted.
    user = await create_user(session)
    token = _signed(_claims(user, settings), settings.secret_key)

    response = await client.get(URL, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json()["user"]["user_id"] == user.user_id


@pytest.mark.parametrize("make_token", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
async def test_bad_tokens_are_401(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    make_token: Callable[[User, Settings], str],
) -> None:
    user = await create_user(session)
    token = make_token(user, settings)

    assert_rejected(await client.get(URL, headers={"Authorization": f"Bearer {token}"}))
    assert_rejected(
        await client.get("/api/users/jobs", headers={"Authorization": f"Bearer {token}"})
    )


@pytest.mark.parametrize("make_token", [_expired, _tampered], ids=["expired", "tampered"])
async def test_bad_tokens_in_the_cookie_are_401(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    make_token: Callable[[User, Settings], str],
) -> None:
    user = await create_user(session)
    client.cookies.set("access_token", make_token(user, settings))

    assert_rejected(await client.get(URL))


async def test_a_signature_moved_onto_another_users_claims_is_401(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    header, _, signature = access_token(alice, settings).split(".")
    bobs_payload = _b64(json.dumps(_claims(alice, settings) | {"sub": str(bob.user_id)}).encode())

    response = await client.get(
        URL, headers={"Authorization": f"Bearer {header}.{bobs_payload}.{signature}"}
    )

    assert_rejected(response)


async def test_a_deleted_users_token_is_401(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)
    assert (await client.get(URL, headers=headers)).status_code == 200

    await session.delete(user)
    await session.commit()

    assert_rejected(await client.get(URL, headers=headers))


async def test_a_deactivated_users_token_is_401(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)
    assert (await client.get(URL, headers=headers)).status_code == 200

    user.is_active = False
    await session.commit()

    assert_rejected(await client.get(URL, headers=headers))
    assert_rejected(await client.get("/api/users/jobs", headers=headers))


async def test_tokens_issued_before_a_token_version_change_are_401(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    old_headers = bearer(user, settings)
    assert (await client.get(URL, headers=old_headers)).status_code == 200

    user.token_version += 1
    await session.commit()

    assert_rejected(await client.get(URL, headers=old_headers))
    fresh = await client.get(URL, headers=bearer(user, settings))
    assert fresh.status_code == 200

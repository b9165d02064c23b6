"""Tokens stop working when they should: after a password change, a deactivation or a logout."""

from datetime import UTC, datetime

from httpx import AsyncClient, Response
from jose import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import create_access_token
from app.models import User
from tests.factories import PASSWORD, bearer, create_user

ME_URL = "/api/users/me"
PASSWORD_URL = "/api/users/me/password"
NEW_PASSWORD = "a brand new passphrase"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token_for(user: User, settings: Settings) -> str:
    return create_access_token(user.user_id, user.token_version, settings).token


async def _login(client: AsyncClient, email: str, password: str) -> Response:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    # Each login stands for another device: keep no cookie between them.
    client.cookies.clear()
    return response


async def _status_with(client: AsyncClient, token: str) -> int:
    return (await client.get(ME_URL, headers=_auth(token))).status_code


# Password change.


async def test_a_password_change_ends_old_tokens_and_hands_out_a_new_one(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    old_token = _token_for(user, settings)
    other_device = (await _login(client, user.email, PASSWORD)).json()["access_token"]

    response = await client.post(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_auth(old_token),
    )

    assert response.status_code == 200
    new_token = response.json()["access_token"]
    assert new_token not in (old_token, other_device)
    assert response.json()["token_type"] == "bearer"
    assert await _status_with(client, old_token) == 401
    assert await _status_with(client, other_device) == 401
    me = await client.get(ME_URL, headers=_auth(new_token))
    assert me.status_code == 200
    assert me.json()["user"]["user_id"] == user.user_id


async def test_after_a_password_change_only_the_new_password_logs_in(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    await client.post(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_auth(_token_for(user, settings)),
    )
    client.cookies.clear()

    assert (await _login(client, user.email, PASSWORD)).status_code == 401
    assert (await _login(client, user.email, NEW_PASSWORD)).status_code == 200


async def test_a_password_change_by_cookie_replaces_the_cookie(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    login = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    old_token = login.json()["access_token"]

    response = await client.post(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Origin": "http://localhost:3000"},
    )

    assert response.status_code == 200
    assert client.cookies["access_token"] == response.json()["access_token"]
    # The browser's session goes on with the new cookie; the old one is dead.
    assert (await client.get(ME_URL)).status_code == 200
    assert await _status_with(client, old_token) == 401


async def test_a_wrong_current_password_changes_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    token = _token_for(user, settings)

    response = await client.post(
        PASSWORD_URL,
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=_auth(token),
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Current password is incorrect", "success": False}
    assert "set-cookie" not in response.headers
    assert await _status_with(client, token) == 200
    assert (await _login(client, user.email, NEW_PASSWORD)).status_code == 401
    assert (await _login(client, user.email, PASSWORD)).status_code == 200


async def test_a_too_short_new_password_is_422_and_changes_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    token = _token_for(user, settings)

    response = await client.post(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=_auth(token),
    )

    assert response.status_code == 422
    assert response.json()["success"] is False
    assert await _status_with(client, token) == 200


async def test_a_password_change_needs_a_session(client: AsyncClient) -> None:
    response = await client.post(
        PASSWORD_URL, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 401


# Deactivation by an admin.


async def _set_active(
    client: AsyncClient, admin_token: str, user: User, *, is_active: bool
) -> Response:
    return await client.patch(
        f"/api/admin/users/{user.user_id}",
        json={"is_active": is_active},
        headers=_auth(admin_token),
    )


async def test_deactivation_ends_the_users_sessions_and_reactivation_does_not_revive_them(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)
    admin_token = _token_for(admin, settings)
    user = await create_user(session)
    token = (await _login(client, user.email, PASSWORD)).json()["access_token"]
    assert await _status_with(client, token) == 200

    deactivated = await _set_active(client, admin_token, user, is_active=False)
    assert deactivated.status_code == 200
    assert deactivated.json()["user"]["is_active"] is False
    assert await _status_with(client, token) == 401
    assert (await _login(client, user.email, PASSWORD)).status_code == 401

    reactivated = await _set_active(client, admin_token, user, is_active=True)
    assert reactivated.status_code == 200
    assert reactivated.json()["user"]["is_active"] is True
    assert await _status_with(client, token) == 401

    fresh = await _login(client, user.email, PASSWORD)
    assert fresh.status_code == 200
    assert await _status_with(client, fresh.json()["access_token"]) == 200


async def test_deactivating_an_unknown_user_is_404(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)

    response = await client.patch(
        "/api/admin/users/2147483647",
        json={"is_active": False},
        headers=_auth(_token_for(admin, settings)),
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "User not found", "success": False}


async def test_non_admins_cannot_deactivate_anyone(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    attacker = await create_user(session)
    victim = await create_user(session)
    victim_token = _token_for(victim, settings)

    for target in (victim, attacker):
        response = await _set_active(
            client, _token_for(attacker, settings), target, is_active=False
        )
        assert response.status_code == 403
        assert response.json() == {"detail": "Admin privileges required", "success": False}

    assert await _status_with(client, victim_token) == 200


async def test_the_admin_users_route_needs_a_session(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    response = await client.patch(f"/api/admin/users/{user.user_id}", json={"is_active": False})

    assert response.status_code == 401


# Logout.


async def test_logout_ends_that_token_only(client: AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)
    laptop = (await _login(client, user.email, PASSWORD)).json()["access_token"]
    phone = (await _login(client, user.email, PASSWORD)).json()["access_token"]
    assert laptop != phone

    response = await client.post("/api/auth/logout", headers=_auth(laptop))

    assert response.status_code == 200
    assert await _status_with(client, laptop) == 401
    assert await _status_with(client, phone) == 200


async def test_a_logged_out_token_cannot_be_used_to_write(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    token = (await _login(client, user.email, PASSWORD)).json()["access_token"]
    await client.post("/api/auth/logout", headers=_auth(token))

    response = await client.post(
        "/api/users/jobs", json={"job_name": "x", "job_type": "simple"}, headers=_auth(token)
    )

    assert response.status_code == 401


async def test_logging_out_twice_is_harmless(client: AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)
    token = (await _login(client, user.email, PASSWORD)).json()["access_token"]

    first = await client.post("/api/auth/logout", headers=_auth(token))
    second = await client.post("/api/auth/logout", headers=_auth(token))

    assert (first.status_code, second.status_code) == (200, 200)
    assert await _status_with(client, token) == 401


# Claims.


async def test_issued_tokens_say_when_they_were_issued(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    token = (await _login(client, user.email, PASSWORD)).json()["access_token"]

    claims = jwt.decode(token, settings.secret_key, algorithms=["HS256"])
    now = datetime.now(UTC).timestamp()
    assert isinstance(claims["iat"], int)
    assert now - 60 <= claims["iat"] <= now + 1
    assert claims["exp"] - claims["iat"] == settings.access_token_lifetime_seconds
    assert claims["sub"] == str(user.user_id)
    assert claims["jti"]


async def test_every_login_gets_a_token_id_of_its_own(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    tokens = [(await _login(client, user.email, PASSWORD)).json()["access_token"] for _ in "ab"]

    ids = {jwt.decode(t, settings.secret_key, algorithms=["HS256"])["jti"] for t in tokens}
    assert len(ids) == 2


async def test_an_admin_cannot_deactivate_their_own_account(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)

    response = await client.patch(
        f"/api/admin/users/{admin.user_id}",
        json={"is_active": False},
        headers=bearer(admin, settings),
    )

    assert response.status_code == 409
    assert (await client.get("/api/users/me", headers=bearer(admin, settings))).status_code == 200

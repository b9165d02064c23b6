import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import User
from tests.factories import USER_FIELDS

URL = "/api/auth/register"
PASSWORD = "a long enough password"


async def test_registers_a_user_without_exposing_the_password_hash(client: AsyncClient) -> None:
    response = await client.post(
        URL,
        json={"email": "New.User@Example.com", "password": PASSWORD, "full_name": "  New User  "},
    )

    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "User registered successfully"
    user = body["user"]
    assert set(user) == USER_FIELDS
    assert isinstance(user["user_id"], int)
    assert user["email"] == "new.user@example.com"
    assert user["full_name"] == "New User"
    assert user["is_active"] is True
    assert user["is_admin"] is False
    assert "hashed_password" not in response.text
    assert "argon2" not in response.text
    assert PASSWORD not in response.text


async def test_a_registered_user_can_log_in(client: AsyncClient) -> None:
    registered = await client.post(URL, json={"email": "fresh@example.com", "password": PASSWORD})
    assert registered.status_code == 201

    login = await client.post(
        "/api/auth/login", json={"email": "fresh@example.com", "password": PASSWORD}
    )

    assert login.status_code == 200
    assert login.json()["user"]["user_id"] == registered.json()["user"]["user_id"]


async def test_registration_cannot_make_an_admin(
    client: AsyncClient, session: AsyncSession
) -> None:
    response = await client.post(
        URL, json={"email": "sneaky@example.com", "password": PASSWORD, "is_admin": True}
    )

    # Refusing the unknown field or ignoring it are both fine; an admin account is not.
    assert response.status_code in {201, 422}
    stored = await session.scalar(select(User).where(User.email == "sneaky@example.com"))
    assert stored is None or stored.is_admin is False
    if response.status_code == 201:
        assert response.json()["user"]["is_admin"] is False


async def test_an_email_taken_in_another_case_is_a_409(client: AsyncClient) -> None:
    first = await client.post(URL, json={"email": "User@X.com", "password": PASSWORD})
    assert first.status_code == 201

    for email in ("user@x.com", "USER@X.COM"):
        response = await client.post(URL, json={"email": email, "password": "another password"})
        assert response.status_code == 409, email
        assert response.json() == {
            "detail": "A user with this email already exists",
            "success": False,
        }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"email": "not-an-email", "password": PASSWORD}, "email", id="no-at-sign"),
        pytest.param({"email": "user@", "password": PASSWORD}, "email", id="no-domain"),
        pytest.param({"email": "", "password": PASSWORD}, "email", id="empty-email"),
        pytest.param({"password": PASSWORD}, "email", id="missing-email"),
        pytest.param({"email": "a@example.com", "password": "seven77"}, "password", id="7-chars"),
        pytest.param({"email": "a@example.com", "password": "a" * 1025}, "password", id="1025-b"),
        # 513 characters, but 1026 bytes in UTF-8: the cap is on bytes.
        pytest.param({"email": "a@example.com", "password": "é" * 513}, "password", id="1026-b"),
        pytest.param({"email": "a@example.com"}, "password", id="missing-password"),
    ],
)
async def test_invalid_registrations_are_422(
    client: AsyncClient, session: AsyncSession, body: dict[str, str], field: str
) -> None:
    response = await client.post(URL, json=body)

    assert response.status_code == 422
    payload = response.json()
    assert payload["success"] is False
    assert ["body", field] in [error["loc"] for error in payload["detail"]]
    assert await session.scalar(select(User).where(User.email == "a@example.com")) is None


@pytest.mark.parametrize(
    "password",
    [pytest.param("eight888", id="8-chars"), pytest.param("é" * 512, id="1024-bytes")],
)
async def test_passwords_at_the_limits_are_accepted(client: AsyncClient, password: str) -> None:
    response = await client.post(URL, json={"email": "limit@example.com", "password": password})

    assert response.status_code == 201

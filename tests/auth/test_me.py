from datetime import datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import USER_FIELDS, bearer, create_user

URL = "/api/users/me"


@pytest.mark.parametrize("is_admin", [False, True], ids=["user", "admin"])
async def test_me_returns_the_caller_in_the_spec_shape(
    client: AsyncClient, session: AsyncSession, settings: Settings, is_admin: bool
) -> None:
    user = await create_user(session, full_name="Ada Lovelace", is_admin=is_admin)
    await create_user(session)  # someone else, who must not be answered instead

    response = await client.get(URL, headers=bearer(user, settings))

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["user", "message", "success"]
    assert body["message"] == "User fetched successfully"
    assert body["success"] is True
    me = body["user"]
    assert set(me) == USER_FIELDS
    assert me["user_id"] == user.user_id
    assert me["email"] == user.email
    assert me["full_name"] == "Ada Lovelace"
    assert me["is_active"] is True
    assert me["is_admin"] is is_admin
    assert datetime.fromisoformat(me["created_at"]).utcoffset() == timedelta(0)
    assert datetime.fromisoformat(me["updated_at"]) >= datetime.fromisoformat(me["created_at"])


async def test_me_without_credentials_is_401(client: AsyncClient) -> None:
    response = await client.get(URL)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Authentication required", "success": False}

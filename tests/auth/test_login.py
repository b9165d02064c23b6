from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import PASSWORD, cookie_attributes, create_user

LOGIN_URL = "/api/auth/login"
TOKEN_URL = "/api/auth/token"
JOBS_URL = "/api/users/jobs"
BAD_CREDENTIALS = {"detail": "Incorrect email or password", "success": False}


async def test_login_returns_a_token_the_user_and_a_secure_cookie(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    response = await client.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user", "message", "success"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_expire_minutes * 60
    assert body["message"] == "Login successful"
    assert body["success"] is True
    assert body["user"]["user_id"] == user.user_id
    assert body["user"]["email"] == user.email
    assert "hashed_password" not in body["user"]

    [set_cookie] = response.headers.get_list("set-cookie")
    name, value, attributes = cookie_attributes(set_cookie)
    assert name == "access_token"
    assert value == body["access_token"]
    assert attributes["max-age"] == str(settings.access_token_expire_minutes * 60)
    assert attributes["path"] == "/"
    assert attributes["samesite"] == "lax"
    assert "httponly" in attributes
    assert "secure" in attributes

    jobs = await client.get(JOBS_URL, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert jobs.status_code == 200


async def test_login_email_is_case_insensitive(client: AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session, email="mixed@example.com")

    response = await client.post(
        LOGIN_URL, json={"email": "Mixed@Example.COM", "password": PASSWORD}
    )

    assert response.status_code == 200
    assert response.json()["user"]["user_id"] == user.user_id


async def test_wrong_password_and_unknown_email_look_the_same(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    wrong_password = await client.post(
        LOGIN_URL, json={"email": user.email, "password": "not the password"}
    )
    unknown_email = await client.post(
        LOGIN_URL, json={"email": "nobody@example.com", "password": PASSWORD}
    )

    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert response.json() == BAD_CREDENTIALS
        assert response.headers["www-authenticate"] == "Bearer"
        assert "set-cookie" not in response.headers
    assert wrong_password.content == unknown_email.content


async def test_an_inactive_user_cannot_log_in(client: AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session, is_active=False)

    response = await client.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})

    assert response.status_code == 401
    assert response.json() == BAD_CREDENTIALS
    assert "set-cookie" not in response.headers


async def test_login_without_a_password_is_422(client: AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)

    for body in ({"email": user.email}, {"email": user.email, "password": ""}):
        response = await client.post(LOGIN_URL, json=body)
        assert response.status_code == 422, body
        assert response.json()["success"] is False


async def test_oauth2_form_login_returns_a_bearer_token_that_works(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session, email="form@example.com")

    response = await client.post(
        TOKEN_URL, data={"username": "Form@Example.com", "password": PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_expire_minutes * 60

    me = await client.get(
        "/api/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["user"]["user_id"] == user.user_id
    jobs = await client.get(JOBS_URL, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert jobs.status_code == 200
    assert jobs.json()["success"] is True


async def test_oauth2_form_login_with_a_wrong_password_is_401(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    response = await client.post(TOKEN_URL, data={"username": user.email, "password": "nope nope"})

    assert response.status_code == 401
    assert response.json() == BAD_CREDENTIALS
    assert response.headers["www-authenticate"] == "Bearer"


async def test_oauth2_form_login_without_fields_is_422(client: AsyncClient) -> None:
    response = await client.post(TOKEN_URL, data={"username": "someone@example.com"})

    assert response.status_code == 422
    assert response.json()["success"] is False

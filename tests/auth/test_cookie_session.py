from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import (
    PASSWORD,
    access_token,
    bearer,
    cookie_attributes,
    create_job,
    create_user,
)

ME_URL = "/api/users/me"
JOBS_URL = "/api/users/jobs"


async def test_the_cookie_alone_authenticates(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    job = await create_job(session, user)
    client.cookies.set("access_token", access_token(user, settings))

    me = await client.get(ME_URL)
    jobs = await client.get(JOBS_URL)

    assert me.status_code == 200
    assert me.json()["user"]["user_id"] == user.user_id
    assert jobs.status_code == 200
    assert [item["job_id"] for item in jobs.json()["jobs"]] == [job.job_id]


async def test_a_bearer_token_wins_over_another_users_cookie(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    await create_job(session, alice)
    bobs_job = await create_job(session, bob)
    client.cookies.set("access_token", access_token(alice, settings))

    me = await client.get(ME_URL, headers=bearer(bob, settings))
    jobs = await client.get(JOBS_URL, headers=bearer(bob, settings))

    assert me.json()["user"]["user_id"] == bob.user_id
    assert [item["job_id"] for item in jobs.json()["jobs"]] == [bobs_job.job_id]


async def test_logout_expires_the_login_cookie(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    login = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200
    # The client keeps the cookie like a browser would, and it authenticates on its own.
    assert (await client.get(ME_URL)).json()["user"]["user_id"] == user.user_id

    # A browser names the page's origin on a cookie-carrying POST; here, the dashboard's.
    response = await client.post("/api/auth/logout", headers={"Origin": "http://localhost:3000"})

    assert response.status_code == 200
    assert response.json() == {"message": "Logged out successfully", "success": True}
    [set_cookie] = response.headers.get_list("set-cookie")
    name, _, attributes = cookie_attributes(set_cookie)
    assert name == "access_token"
    assert attributes["max-age"] == "0"
    assert attributes["path"] == "/"
    assert "httponly" in attributes
    assert "secure" in attributes
    assert client.cookies.get("access_token") is None
    after = await client.get(ME_URL)
    assert after.status_code == 401


async def test_logout_without_a_session_still_answers_200(client: AsyncClient) -> None:
    response = await client.post("/api/auth/logout")

    assert response.status_code == 200
    assert response.json()["success"] is True
    [set_cookie] = response.headers.get_list("set-cookie")
    assert cookie_attributes(set_cookie)[2]["max-age"] == "0"

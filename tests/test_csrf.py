"""Cross-site request forgery: a write that relies on the login cookie must come from a trusted
origin (CORS_ORIGINS or the API's own); Bearer requests and safe methods are not concerned."""

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import create_access_token
from app.models import JobStatus, User
from tests.factories import PASSWORD, bearer, create_job, create_user

JOBS_URL = "/api/users/jobs"
ME_URL = "/api/users/me"
NEW_JOB = {"job_name": "nightly report", "job_type": "simple"}
REFUSED = {"detail": "Cross-site request refused", "success": False}

TRUSTED = "http://localhost:3000"  # settings.cors_origins
SELF = "https://testserver"  # the API's own origin, as the client's base_url
FOREIGN = "https://evil.example"


def _log_in_by_cookie(client: AsyncClient, user: User, settings: Settings) -> None:
    client.cookies.set(
        "access_token", create_access_token(user.user_id, user.token_version, settings).token
    )


async def _job_count(client: AsyncClient, user: User, settings: Settings) -> int:
    # Read with a Bearer token, so the check does not depend on the cookie under test.
    response = await client.get(JOBS_URL, headers=bearer(user, settings))
    assert response.status_code == 200
    total: int = response.json()["total"]
    return total


def _assert_refused(response: Response) -> None:
    assert response.status_code == 403
    assert response.json() == REFUSED


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": TRUSTED}, id="cors-origin"),
        pytest.param({"Origin": SELF}, id="same-origin"),
        pytest.param({"Referer": f"{TRUSTED}/dashboard"}, id="trusted-referer"),
        pytest.param({"Referer": f"{SELF}/docs"}, id="same-origin-referer"),
    ],
)
async def test_a_cookie_write_from_a_trusted_origin_is_accepted(
    client: AsyncClient, session: AsyncSession, settings: Settings, headers: dict[str, str]
) -> None:
    user = await create_user(session)
    _log_in_by_cookie(client, user, settings)

    response = await client.post(JOBS_URL, json=NEW_JOB, headers=headers)

    assert response.status_code == 201
    assert response.json()["job"]["user_id"] == user.user_id
    assert await _job_count(client, user, settings) == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": FOREIGN}, id="foreign-origin"),
        pytest.param({"Origin": "null"}, id="opaque-origin"),
        pytest.param({"Origin": "http://localhost:3001"}, id="other-port"),
        pytest.param({"Origin": "https://localhost:3000"}, id="other-scheme"),
        pytest.param({"Origin": "http://localhost:3000.evil.example"}, id="lookalike-host"),
        pytest.param({"Referer": f"{FOREIGN}/page"}, id="foreign-referer"),
        pytest.param({"Referer": "http://localhost:3000@evil.example/"}, id="userinfo-referer"),
        pytest.param({"Referer": "not a url"}, id="garbled-referer"),
        # A trusted Referer does not excuse a foreign Origin: the Origin is what counts.
        pytest.param({"Origin": FOREIGN, "Referer": f"{TRUSTED}/x"}, id="foreign-origin-wins"),
        pytest.param({}, id="no-origin-no-referer"),
    ],
)
async def test_a_cookie_write_from_anywhere_else_is_refused_and_changes_nothing(
    client: AsyncClient, session: AsyncSession, settings: Settings, headers: dict[str, str]
) -> None:
    user = await create_user(session)
    _log_in_by_cookie(client, user, settings)

    response = await client.post(JOBS_URL, json=NEW_JOB, headers=headers)

    _assert_refused(response)
    assert await _job_count(client, user, settings) == 0


async def test_cancel_by_cookie_from_a_foreign_origin_is_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    job = await create_job(session, user)
    _log_in_by_cookie(client, user, settings)
    url = f"{JOBS_URL}/{job.job_id}"

    refused = await client.post(f"{url}/cancel", headers={"Origin": FOREIGN})
    _assert_refused(refused)
    assert (await client.get(url)).json()["job"]["status"] == "pending"

    accepted = await client.post(f"{url}/cancel", headers={"Origin": TRUSTED})
    assert accepted.status_code == 200
    assert accepted.json()["job"]["status"] == "cancelled"


async def test_admin_job_status_change_by_cookie_from_a_foreign_origin_is_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)
    owner = await create_user(session)
    job = await create_job(session, owner)
    _log_in_by_cookie(client, admin, settings)
    url = f"/api/admin/jobs/{job.job_id}"

    refused = await client.patch(url, json={"status": "running"}, headers={"Origin": FOREIGN})
    _assert_refused(refused)
    owner_view = await client.get(f"{JOBS_URL}/{job.job_id}", headers=bearer(owner, settings))
    assert owner_view.json()["job"]["status"] == JobStatus.PENDING.value

    accepted = await client.patch(url, json={"status": "running"}, headers={"Origin": TRUSTED})
    assert accepted.status_code == 200
    assert accepted.json()["job"]["status"] == "running"


async def test_admin_deactivation_by_cookie_from_a_foreign_origin_is_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)
    victim = await create_user(session)
    _log_in_by_cookie(client, admin, settings)

    response = await client.patch(
        f"/api/admin/users/{victim.user_id}",
        json={"is_active": False},
        headers={"Referer": f"{FOREIGN}/page"},
    )

    _assert_refused(response)
    # The victim's session survives: the deactivation never happened.
    assert (await client.get(ME_URL, headers=bearer(victim, settings))).status_code == 200


async def test_logout_by_cookie_from_a_foreign_origin_is_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    _log_in_by_cookie(client, user, settings)

    refused = await client.post("/api/auth/logout", headers={"Origin": FOREIGN})

    _assert_refused(refused)
    assert "set-cookie" not in refused.headers
    assert (await client.get(ME_URL)).status_code == 200

    accepted = await client.post("/api/auth/logout", headers={"Origin": TRUSTED})
    assert accepted.status_code == 200


async def test_a_bearer_write_is_not_subject_to_the_origin_check(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    response = await client.post(
        JOBS_URL, json=NEW_JOB, headers={**bearer(user, settings), "Origin": FOREIGN}
    )

    assert response.status_code == 201
    assert await _job_count(client, user, settings) == 1


async def test_reads_by_cookie_work_from_any_origin(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    _log_in_by_cookie(client, user, settings)

    response = await client.get(JOBS_URL, headers={"Origin": FOREIGN})

    assert response.status_code == 200
    assert response.json()["total"] == 1


@pytest.mark.parametrize("headers", [{"Origin": FOREIGN}, {"Origin": "null"}])
async def test_json_login_from_a_foreign_origin_is_refused_without_a_cookie(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    user = await create_user(session)

    response = await client.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}, headers=headers
    )

    _assert_refused(response)
    assert "set-cookie" not in response.headers
    assert "access_token" not in client.cookies


async def test_form_login_from_a_foreign_origin_is_refused(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    response = await client.post(
        "/api/auth/token",
        data={"username": user.email, "password": PASSWORD},
        headers={"Origin": FOREIGN},
    )

    _assert_refused(response)
    assert "access_token" not in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-origin"),
        pytest.param({"Origin": TRUSTED}, id="cors-origin"),
        pytest.param({"Origin": SELF}, id="same-origin"),
    ],
)
async def test_login_without_origin_or_from_a_trusted_one_works(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    user = await create_user(session)

    json_login = await client.post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}, headers=headers
    )
    client.cookies.clear()
    form_login = await client.post(
        "/api/auth/token", data={"username": user.email, "password": PASSWORD}, headers=headers
    )

    assert json_login.status_code == 200
    assert "access_token=" in json_login.headers["set-cookie"]
    assert form_login.status_code == 200
    assert form_login.json()["access_token"]


async def test_a_stale_cookie_does_not_block_logging_in_again_without_an_origin(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    credentials = {"email": user.email, "password": PASSWORD}
    assert (await client.post("/api/auth/login", json=credentials)).status_code == 200
    assert "access_token" in client.cookies

    again = await client.post("/api/auth/login", json=credentials)

    assert again.status_code == 200

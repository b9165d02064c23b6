"""Headers that stop browsers sniffing answers and shared caches keeping a user's data."""

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import create_access_token
from tests.factories import PASSWORD, bearer, create_job, create_user

JSON = {"Content-Type": "application/json"}
AUTHENTICATED_READS = ["/api/users/jobs", "/api/users/jobs/stats", "/api/users/me"]


def _tokens(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


async def test_health_check_answers_with_nosniff(client: AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        pytest.param("GET", "/api/users/jobs", {}, 401, id="401-no-credentials"),
        pytest.param(
            "GET", "/api/users/me", {"headers": {"Authorization": "Bearer x"}}, 401, id="401-bad"
        ),
        pytest.param("GET", "/api/no-such-route", {}, 404, id="404-unknown-route"),
        pytest.param("DELETE", "/healthz", {}, 405, id="405-method"),
        pytest.param("POST", "/api/auth/register", {"json": {}}, 422, id="422-validation"),
        pytest.param(
            "POST", "/api/auth/login", {"content": b"{", "headers": JSON}, 422, id="422-bad-json"
        ),
        pytest.param(
            "POST",
            "/api/auth/login",
            {"json": {}, "headers": {"Origin": "https://evil.example"}},
            403,
            id="403-csrf",
        ),
        pytest.param(
            "POST",
            "/api/auth/register",
            {"content": b"x" * (1024 * 1024 + 1), "headers": JSON},
            413,
            id="413-too-large",
        ),
    ],
)
async def test_error_answers_carry_nosniff(
    client: AsyncClient, method: str, url: str, kwargs: dict[str, object], status: int
) -> None:
    response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]

    assert response.status_code == status
    assert response.json()["success"] is False
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_404_for_a_job_carries_nosniff(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    response = await client.get("/api/users/jobs/999999", headers=bearer(user, settings))

    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_nosniff_is_sent_once(client: AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


@pytest.mark.parametrize("url", AUTHENTICATED_READS)
async def test_authenticated_answers_are_private_and_vary_on_credentials(
    client: AsyncClient, session: AsyncSession, settings: Settings, url: str
) -> None:
    user = await create_user(session)
    await create_job(session, user)

    response = await client.get(url, headers=bearer(user, settings))

    assert response.status_code == 200
    cache_control = _tokens(response.headers["cache-control"])
    assert "private" in cache_control
    assert cache_control & {"no-cache", "no-store"}
    assert "public" not in cache_control
    vary = _tokens(response.headers["vary"])
    assert {"authorization", "cookie"} <= vary
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("url", AUTHENTICATED_READS)
async def test_cookie_authenticated_answers_are_private_too(
    client: AsyncClient, session: AsyncSession, settings: Settings, url: str
) -> None:
    user = await create_user(session)
    client.cookies.set(
        "access_token", create_access_token(user.user_id, user.token_version, settings).token
    )

    response = await client.get(url)

    assert response.status_code == 200
    assert "private" in _tokens(response.headers["cache-control"])
    assert {"authorization", "cookie"} <= _tokens(response.headers["vary"])


async def test_a_cors_answer_keeps_vary_on_credentials(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    # CORS adds "Vary: Origin"; that must not replace the credential headers.
    user = await create_user(session)

    response = await client.get(
        "/api/users/jobs", headers={**bearer(user, settings), "Origin": "http://localhost:3000"}
    )

    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    vary = set()
    for value in response.headers.get_list("vary"):
        vary |= _tokens(value)
    assert {"authorization", "cookie", "origin"} <= vary


async def test_answers_carrying_a_token_are_never_stored(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)
    credentials = {"email": user.email, "password": PASSWORD}

    login = await client.post("/api/auth/login", json=credentials)
    client.cookies.clear()
    form = await client.post("/api/auth/token", data={"username": user.email, "password": PASSWORD})
    changed = await client.post(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new password"},
        headers={"Authorization": f"Bearer {form.json()['access_token']}"},
    )

    for response in (login, form, changed):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"

"""Every error is JSON with `"success": false` and a `detail`, and none leaks a secret."""

from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import JobStatus
from tests.factories import bearer, create_job, create_user

Scenario = Callable[[AsyncClient, AsyncSession, Settings], Awaitable[Response]]


async def _bad_cursor(client: AsyncClient, session: AsyncSession, settings: Settings) -> Response:
    user = await create_user(session)
    return await client.get(
        "/api/users/jobs", params={"cursor": "garbage"}, headers=bearer(user, settings)
    )


async def _no_credentials(client: AsyncClient, _s: AsyncSession, _c: Settings) -> Response:
    return await client.get("/api/users/jobs")


async def _not_admin(client: AsyncClient, session: AsyncSession, settings: Settings) -> Response:
    user = await create_user(session)
    job = await create_job(session, user)
    return await client.patch(
        f"/api/admin/jobs/{job.job_id}", json={"status": "running"}, headers=bearer(user, settings)
    )


async def _missing_job(client: AsyncClient, session: AsyncSession, settings: Settings) -> Response:
    user = await create_user(session)
    return await client.get(f"/api/users/jobs/{2**63 - 1}", headers=bearer(user, settings))


async def _unknown_route(client: AsyncClient, _s: AsyncSession, _c: Settings) -> Response:
    return await client.get("/api/nothing-here")


async def _wrong_method(client: AsyncClient, _s: AsyncSession, _c: Settings) -> Response:
    return await client.delete("/api/users/me")


async def _conflict(client: AsyncClient, session: AsyncSession, settings: Settings) -> Response:
    user = await create_user(session)
    job = await create_job(session, user, status=JobStatus.COMPLETED)
    return await client.post(f"/api/users/jobs/{job.job_id}/cancel", headers=bearer(user, settings))


async def _invalid_body(client: AsyncClient, session: AsyncSession, settings: Settings) -> Response:
    user = await create_user(session)
    return await client.post(
        "/api/users/jobs", json={"job_name": ""}, headers=bearer(user, settings)
    )


async def _malformed_json(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> Response:
    user = await create_user(session)
    return await client.post(
        "/api/users/jobs",
        content=b'{"job_name": ',
        headers={**bearer(user, settings), "Content-Type": "application/json"},
    )


SCENARIOS: dict[str, tuple[Scenario, int]] = {
    "400-bad-cursor": (_bad_cursor, 400),
    "401-no-credentials": (_no_credentials, 401),
    "403-not-admin": (_not_admin, 403),
    "404-missing-job": (_missing_job, 404),
    "404-unknown-route": (_unknown_route, 404),
    "405-wrong-method": (_wrong_method, 405),
    "409-conflict": (_conflict, 409),
    "422-invalid-body": (_invalid_body, 422),
    "422-malformed-json": (_malformed_json, 422),
}


@pytest.mark.parametrize(("scenario", "status_code"), SCENARIOS.values(), ids=list(SCENARIOS))
async def test_every_error_is_json_with_success_false_and_a_detail(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    scenario: Scenario,
    status_code: int,
) -> None:
    response = await scenario(client, session, settings)

    assert response.status_code == status_code
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert body["detail"]
    assert set(body) == {"detail", "success"}


async def test_an_unknown_route_is_a_json_404(client: AsyncClient) -> None:
    response = await client.get("/no/such/route")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "success": False}


@pytest.mark.parametrize(
    ("url", "body"),
    [
        pytest.param(
            "/api/auth/register", {"email": "a@example.com", "password": "Qz7#kWp"}, id="short"
        ),
        pytest.param(
            "/api/auth/register",
            {"email": "a@example.com", "password": "Ünïcødé-sëcrët" * 80},
            id="too-many-bytes",
        ),
        pytest.param(
            "/api/auth/register",
            {"email": "not an email", "password": "Vt4$good-password"},
            id="bad-email-good-password",
        ),
        pytest.param(
            "/api/auth/login",
            {"email": "a@example.com", "password": "Lp9&" + "x" * 1100},
            id="login-too-long",
        ),
    ],
)
async def test_a_422_lists_field_errors_and_never_echoes_the_password(
    client: AsyncClient, url: str, body: dict[str, str]
) -> None:
    response = await client.post(url, json=body)

    assert response.status_code == 422
    payload = response.json()
    assert payload["success"] is False
    assert isinstance(payload["detail"], list)
    assert payload["detail"]
    for error in payload["detail"]:
        assert {"loc", "msg", "type"} <= set(error)
        assert error["loc"][0] == "body"
    assert body["password"] not in response.text
    assert body["password"][:7] not in response.text


async def test_an_unexpected_exception_is_a_generic_500(app: FastAPI) -> None:
    async def explode() -> None:
        raise RuntimeError("internal detail: /srv/secrets.txt")

    app.add_api_route("/api/test-only/explode", explode, methods=["GET"])
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/api/test-only/explode")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "success": False}
    assert "secrets" not in response.text

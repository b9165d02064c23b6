"""No answer echoes the Host header into a Location: a URL that is not a route is a plain 404,
not a redirect another host could be slipped into."""

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import bearer, create_user

EVIL = {"Host": "evil.example"}


def _paths_with_a_trailing_slash(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for path, methods in app.openapi()["paths"].items():
        concrete = path.replace("{job_id}", "1").replace("{user_id}", "1")
        found.extend((method.upper(), concrete + "/") for method in methods)
    return found


async def test_no_route_redirects_a_trailing_slash_to_the_host_it_was_told(
    app: FastAPI, client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    paths = _paths_with_a_trailing_slash(app)
    assert ("GET", "/api/users/jobs/") in paths

    for method, path in paths:
        for headers in (EVIL, {**EVIL, **bearer(user, settings)}):
            response = await client.request(method, path, headers=headers)
            assert "location" not in response.headers, (method, path, response.headers)
            assert response.status_code == 404, (method, path, response.status_code)
            assert response.json()["success"] is False


@pytest.mark.parametrize(
    "path",
    ["//evil.example/", "//evil.example/api/users/jobs/", "/\\evil.example/", "/api/users/jobs//"],
)
async def test_scheme_relative_paths_do_not_redirect_anywhere(
    client: AsyncClient, path: str
) -> None:
    response = await client.get(path, headers=EVIL)

    assert "location" not in response.headers
    assert response.status_code == 404


async def test_the_route_itself_still_answers_under_any_host(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    response = await client.get("/api/users/jobs", headers={**EVIL, **bearer(user, settings)})

    assert response.status_code == 200
    assert response.json()["jobs"] == []

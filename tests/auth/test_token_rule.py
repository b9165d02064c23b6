"""One rule says whether a token still holds (app/auth/caller.py, check_token), and every
authenticated route obeys it: the routes are found in the app itself, so a route added later
is covered without editing this file."""

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

import app.auth.service as auth_service
from app.auth.caller import Caller, InvalidSession
from app.auth.dependencies import get_caller
from app.core.config import Settings
from app.core.security import TokenClaims
from app.main import app as the_app
from tests.apps import OpenApp
from tests.factories import bearer, create_job, create_user


def _calls(dependant: Dependant) -> Iterator[object]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


AUTHENTICATED = sorted(
    (method, route.path)
    for route in iter_route_contexts(the_app.routes)
    if hasattr(route, "dependant") and get_caller in set(_calls(route.dependant))
    for method in route.methods or ()
)


@pytest.fixture(autouse=True)
def _streams_answer_at_once(running: OpenApp) -> None:
    """An event stream answers for as long as its token holds, and the ASGI client waits for
    the end of an answer: with the app's streams told to stop, one that passes the token rule
    answers 200 and ends at once."""
    running.context.event_hub.close()


def test_the_authenticated_routes_are_found() -> None:
    assert ("GET", "/api/users/jobs") in AUTHENTICATED
    assert ("GET", "/api/users/jobs/stats") in AUTHENTICATED
    assert ("GET", "/api/users/me") in AUTHENTICATED
    assert ("PATCH", "/api/admin/users/{user_id}") in AUTHENTICATED
    assert len(AUTHENTICATED) >= 8


async def _call(
    client: AsyncClient, method: str, template: str, headers: dict[str, str], job_id: int
) -> Response:
    path = template.replace("{job_id}", str(job_id)).replace("{user_id}", "1")
    body = None if method == "GET" else {}
    return await client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
@pytest.mark.parametrize("revalidation", [False, True], ids=["plain", "if-none-match"])
async def test_a_deactivated_users_token_is_refused_everywhere(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    method: str,
    path: str,
    revalidation: bool,
) -> None:
    user = await create_user(session, is_admin=True)
    job = await create_job(session, user)
    headers = bearer(user, settings)
    if revalidation:
        headers["If-None-Match"] = "*"
    assert (await _call(client, method, path, headers, job.job_id)).status_code != 401

    user.is_active = False
    await session.commit()
    refused = await _call(client, method, path, headers, job.job_id)

    assert refused.status_code == 401, refused.text
    assert refused.json() == {"detail": "Invalid or expired token", "success": False}


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
async def test_a_rule_added_to_check_token_applies_to_every_route_at_once(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
) -> None:
    """As a maintainer would add one: refuse a "locked" account. Nothing else changes."""
    locked, other = await create_user(session, is_admin=True), await create_user(session)
    job = await create_job(session, locked)
    rule = auth_service.check_token

    def check_token_with_a_lock(claims: TokenClaims, caller: Caller | None, **kw: bool) -> Caller:
        if caller is not None and caller.user_id == locked.user_id:
            raise InvalidSession
        return rule(claims, caller, **kw)

    monkeypatch.setattr(auth_service, "check_token", check_token_with_a_lock)

    refused = await _call(client, method, path, bearer(locked, settings), job.job_id)
    passed = await _call(client, method, path, bearer(other, settings), job.job_id)

    assert refused.status_code == 401, refused.text
    assert passed.status_code != 401, passed.text

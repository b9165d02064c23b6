"""argon2 work is bounded: wrong current passwords are throttled like failed logins, one client's
logins and registrations share a budget whatever the email, and the hashes computed at once are
capped (the rest wait briefly, then 503 with Retry-After), and one client may have only a few
in progress at once. A real user gets through a flood from one client."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import create_sessionmaker
from tests.apps import make_settings, open_app
from tests.factories import PASSWORD, bearer, create_job, create_user
from tests.live_app import live_app

LOGIN_URL = "/api/auth/login"
TOKEN_URL = "/api/auth/token"
REGISTER_URL = "/api/auth/register"
PASSWORD_URL = "/api/users/me/password"
BUDGET = 6


def _assert_retry_later(response: Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.json()["success"] is False
    assert int(response.headers["retry-after"]) >= 1


@asynccontextmanager
async def _clients(
    connection: AsyncConnection, database_url: str, *addresses: str, **overrides: Any
) -> AsyncIterator[list[AsyncClient]]:
    """Clients at these addresses, for one app of its own, inside the test's transaction."""
    settings = make_settings(database_url, **overrides)
    async with open_app(settings, connection=connection) as opened:
        yield [await opened.client_at(address) for address in addresses]


async def test_wrong_current_passwords_are_throttled_like_failed_logins(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)

    for _ in range(settings.login_max_failures):
        wrong = await client.post(
            PASSWORD_URL,
            json={"current_password": "a wrong guess", "new_password": "new password 1"},
            headers=headers,
        )
        assert wrong.status_code == 400

    for current in ("another guess", PASSWORD):
        blocked = await client.post(
            PASSWORD_URL,
            json={"current_password": current, "new_password": "new password 2"},
            headers=headers,
        )
        _assert_retry_later(blocked, 429)
    still_old = await client.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})
    assert still_old.status_code == 429  # the same account and client: the same count


async def test_a_right_current_password_clears_the_count(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    for _ in range(settings.login_max_failures - 1):
        wrong = await client.post(
            PASSWORD_URL,
            json={"current_password": "a wrong guess", "new_password": "new password 1"},
            headers=bearer(user, settings),
        )
        assert wrong.status_code == 400
    changed = await client.post(
        PASSWORD_URL,
        json={"current_password": PASSWORD, "new_password": "new password 1"},
        headers=bearer(user, settings),
    )
    assert changed.status_code == 200
    token = changed.json()["access_token"]
    wrong = await client.post(
        PASSWORD_URL,
        json={"current_password": "a wrong guess", "new_password": "new password 2"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert wrong.status_code == 400


async def test_one_client_has_a_budget_of_password_checks_across_all_emails(
    connection: AsyncConnection, database_url: str, session: AsyncSession
) -> None:
    user = await create_user(session)
    async with _clients(
        connection, database_url, "10.0.0.66", "10.0.0.7", client_max_password_checks=BUDGET
    ) as (flooder, someone_else):
        answers = []
        for i in range(BUDGET + 3):
            email = f"nobody-{i}-{uuid.uuid4().hex[:8]}@example.com"
            if i % 3 == 0:
                answer = await flooder.post(
                    REGISTER_URL, json={"email": email, "password": PASSWORD}
                )
            elif i % 3 == 1:
                answer = await flooder.post(LOGIN_URL, json={"email": email, "password": "x"})
            else:
                answer = await flooder.post(TOKEN_URL, data={"username": email, "password": "x"})
            answers.append(answer)

        assert all(a.status_code in {201, 401} for a in answers[:BUDGET])
        for refused in answers[BUDGET:]:
            _assert_retry_later(refused, 429)
        own = await flooder.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})
        _assert_retry_later(own, 429)
        other = await someone_else.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})
        assert other.status_code == 200


@pytest.mark.postgres_only
async def test_a_real_user_logs_in_and_lists_jobs_during_a_flood_from_one_client(
    database_url: str, engine: AsyncEngine
) -> None:
    # Waits long enough for a loaded test machine: what this shows is who waits behind whom.
    async with live_app(database_url, engine, password_hash_max_wait_seconds=30) as live:
        user = await live.user("real")
        flooder = await live.client("203.0.113.9")
        real = await live.client("198.51.100.20")
        budget = live.settings.client_max_password_checks

        async def flood(i: int) -> Response:
            if i % 2:
                return await flooder.post(
                    LOGIN_URL, json={"email": f"guess-{i}@example.com", "password": "x"}
                )
            return await flooder.post(
                REGISTER_URL, json={"email": live.email(f"flood{i}"), "password": PASSWORD}
            )

        async def real_user() -> tuple[Response, Response]:
            await asyncio.sleep(0.05)  # once the flood is under way
            login = await real.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})
            token = login.json().get("access_token", "")
            jobs = await real.get("/api/users/jobs", headers={"Authorization": f"Bearer {token}"})
            return login, jobs

        *flooded, (login, jobs) = await asyncio.gather(
            *(flood(i) for i in range(budget * 4)), real_user()
        )

        assert login.status_code == 200, login.text
        assert jobs.status_code == 200
        assert jobs.json()["jobs"] == []
        statuses = [response.status_code for response in flooded]
        assert set(statuses) <= {201, 401, 429}, statuses
        assert sum(status in {201, 401} for status in statuses) <= budget
        assert statuses.count(429) >= budget * 3


@pytest.mark.postgres_only
async def test_hashes_past_the_cap_wait_briefly_then_get_503_with_retry_after(
    database_url: str, engine: AsyncEngine
) -> None:
    async with live_app(
        database_url, engine, password_hash_concurrency=1, password_hash_max_wait_seconds=0
    ) as live:
        user = await live.user("capped")
        async with create_sessionmaker(live.engine)() as session:
            await create_job(session, user)
        clients = [await live.client(f"192.0.2.{i}") for i in range(1, 17)]

        responses = await asyncio.gather(
            *(
                client.post(LOGIN_URL, json={"email": f"x{i}@example.com", "password": "x"})
                for i, client in enumerate(clients)
            )
        )

        statuses = sorted(response.status_code for response in responses)
        assert set(statuses) == {401, 503}, statuses
        for busy in (r for r in responses if r.status_code == 503):
            _assert_retry_later(busy, 503)
        after = await clients[0].post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})
        assert after.status_code == 200
        jobs = await clients[0].get("/api/users/jobs", headers=bearer(user, live.settings))
        assert jobs.json()["total"] == 1


@pytest.mark.postgres_only
async def test_a_burst_of_logins_from_one_address_waits_its_turn_and_succeeds(
    database_url: str, engine: AsyncEngine
) -> None:
    async with live_app(database_url, engine, password_hash_max_wait_seconds=30) as live:
        user = await live.user("office")
        office = await live.client("198.51.100.77")
        burst = 3 * live.settings.client_max_concurrent_password_checks

        logins = await asyncio.gather(
            *(
                office.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})
                for _ in range(burst)
            )
        )

        assert [login.status_code for login in logins] == [200] * burst

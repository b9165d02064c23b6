"""When an events stream ends, and what it holds while open: it ends as soon as its token stops
holding (here or on another instance) or expires; an idle stream holds no pooled connection."""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from jose import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.jobs import events
from app.models import User
from tests.auth.listening import wait_until
from tests.factories import PASSWORD, access_token, bearer
from tests.jobs.event_streams import EVENT_BOUND, open_stream
from tests.live_app import LiveApp, live_app

NEVER = 10 * EVENT_BOUND  # a poll interval no test waits out


@pytest.fixture(autouse=True)
def _no_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """An end must come from the change itself (or the clock of the token), not a poll."""
    monkeypatch.setattr(events, "POLL_SECONDS", NEVER)


@pytest.fixture
async def live(database_url: str, engine: AsyncEngine) -> AsyncIterator[LiveApp]:
    async with live_app(database_url, engine) as live:
        yield live


async def _log_out(client: AsyncClient, user: User, headers: dict[str, str]) -> None:
    response = await client.post("/api/auth/logout", headers=headers)
    assert response.status_code == 200, response.text


async def _change_password(client: AsyncClient, user: User, headers: dict[str, str]) -> None:
    response = await client.post(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=headers,
    )
    assert response.status_code == 200, response.text


Ending = Callable[[AsyncClient, User, dict[str, str]], Awaitable[None]]


@pytest.mark.parametrize("end", [_log_out, _change_password], ids=["logout", "password-change"])
async def test_a_stream_ends_when_its_token_stops_holding(live: LiveApp, end: Ending) -> None:
    client = await live.opened.client_over_tcp()
    user = await live.user("ending")
    headers = bearer(user, live.settings)
    async with open_stream(client, headers) as stream:
        await stream.next()
        await end(client, user, headers)
        assert await stream.ends() == []

    assert (await client.get("/api/users/jobs/events", headers=headers)).status_code == 401


async def test_a_stream_ends_when_an_admin_deactivates_its_user(live: LiveApp) -> None:
    client = await live.opened.client_over_tcp()
    user = await live.user("deactivated")
    admin = bearer(await live.user("admin", is_admin=True), live.settings)
    async with open_stream(client, bearer(user, live.settings)) as stream:
        await stream.next()
        response = await client.patch(
            f"/api/admin/users/{user.user_id}", json={"is_active": False}, headers=admin
        )
        assert response.status_code == 200, response.text
        assert await stream.ends() == []


async def test_a_stream_ends_when_its_token_expires(live: LiveApp) -> None:
    client = await live.opened.client_over_tcp()
    user = await live.user("expiring")
    claims = jwt.get_unverified_claims(access_token(user, live.settings))
    claims["exp"] = int((datetime.now(UTC) + timedelta(seconds=2)).timestamp())
    token = jwt.encode(claims, live.settings.secret_key, algorithm="HS256")

    async with open_stream(client, {"Authorization": f"Bearer {token}"}) as stream:
        assert (await stream.next()).name == "stats"
        # Nothing wakes it: it ends by the token's own clock.
        assert await stream.ends() == []


@pytest.mark.postgres_only
async def test_a_logout_on_another_instance_ends_the_stream(
    database_url: str, engine: AsyncEngine
) -> None:
    async with (
        live_app(database_url, engine, lifespan=True) as here,
        live_app(database_url, engine) as elsewhere,
    ):
        hub = here.opened.context.event_hub
        await wait_until(lambda: hub.poll_seconds is None, EVENT_BOUND, "the listener live")
        client = await here.opened.client_over_tcp()
        user = await here.user("elsewhere")
        headers = bearer(user, here.settings)
        async with open_stream(client, headers) as stream:
            await stream.next()
            await _log_out(elsewhere.opened.client, user, headers)
            assert await stream.ends() == []


@pytest.mark.postgres_only
async def test_idle_streams_hold_no_pooled_connection(
    database_url: str, engine: AsyncEngine
) -> None:
    """More streams than the pool has connections (and no overflow): each still opens, and a
    plain request is answered at once."""
    pool_size = 2
    async with live_app(
        database_url,
        engine,
        database_pool_size=pool_size,
        database_max_overflow=0,
        database_timeout_seconds=2,
        event_streams_per_user=10,
    ) as live:
        client = await live.opened.client_over_tcp()
        headers = bearer(await live.user("pool"), live.settings)
        async with (
            open_stream(client, headers) as first,
            open_stream(client, headers) as second,
            open_stream(client, headers) as third,
            open_stream(client, headers) as fourth,
            open_stream(client, headers) as fifth,
        ):
            for stream in (first, second, third, fourth, fifth):
                assert (await stream.next()).name == "stats"

            response = await client.get("/api/users/jobs", headers=headers)
            assert response.status_code == 200, response.text
            assert live.opened.context.database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
            async with engine.connect() as connection:
                busy = await connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND state <> 'idle'"
                    )
                )
                held = await connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND query LIKE '%pg_current_snapshot%' AND query NOT LIKE '%pg_stat%'"
                    )
                )
            assert busy == 0  # nothing mid-statement or left in a transaction
            assert held <= pool_size  # the streams' reads share the pool's connections

"""The database goes away and comes back while the app keeps running.

The app talks to PostgreSQL through a loopback TCP proxy (tests/tcp_proxy.py) that the tests cut
and restore. It uses its real engine and pool: nothing is rolled back for it, so each test works
as a unique user and deletes that user (and, by cascade, their jobs) at the end.

The time bound is a liveness bound, not a speed claim: during an outage a request must fail
fast with a 503 instead of hanging until some TCP timeout far in the future.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import db
from app.core.config import Settings
from app.models import User
from tests.apps import open_app
from tests.tcp_proxy import BLACKHOLE, REFUSE, Cut, TcpProxy

pytestmark = pytest.mark.postgres_only

SECRET_KEY = "outage-test-secret-key-0123456789abcdefg"  # 40 characters
PASSWORD = "correct horse battery"
JOBS = "/api/users/jobs"
# Connect timeout and statement timeout of the app under test, in seconds.
DB_TIMEOUT = 2
# An answer during an outage must come within this many seconds ...
LIVENESS_BOUND = 10.0
# ... and past this one the request is abandoned, so a hang fails the test instead of the run.
HARD_LIMIT = 30.0

T = TypeVar("T")


async def timed(awaitable: Awaitable[T], what: str) -> tuple[T, float]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(HARD_LIMIT):
            result = await awaitable
    except TimeoutError:
        pytest.fail(f"{what} hung: no answer after {HARD_LIMIT:.0f} s")
    return result, time.monotonic() - started


@dataclass
class Stack:
    app: FastAPI
    client: AsyncClient
    proxy: TcpProxy
    email: str


def _upstream(database_url: str) -> tuple[str, int]:
    url = make_url(database_url)
    host = url.host or "127.0.0.1"
    return ("127.0.0.1" if host == "localhost" else host), url.port or 5432


@pytest.fixture
async def stack(database_url: str, engine: AsyncEngine) -> AsyncIterator[Stack]:
    host, port = _upstream(database_url)
    proxy = TcpProxy(host, port)
    await proxy.start()
    email = f"outage-{uuid.uuid4().hex[:12]}@example.com"
    try:
        proxied_url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="test",
            database_url=proxied_url.render_as_string(hide_password=False),
            secret_key=SECRET_KEY,
            database_timeout_seconds=DB_TIMEOUT,
            database_statement_timeout_seconds=DB_TIMEOUT,
        )
        # Its own engine, through the proxy; nothing replaced.
        async with open_app(settings, raise_app_exceptions=False) as running:
            yield Stack(app=running.app, client=running.client, proxy=proxy, email=email)
    finally:
        await proxy.stop()
        # Straight to the database, not through the proxy.
        async with engine.begin() as connection:
            await connection.execute(delete(User).where(User.email == email))


async def _sign_up(stack: Stack) -> dict[str, str]:
    client = stack.client
    response = await client.post(
        "/api/auth/register", json={"email": stack.email, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        "/api/auth/login", json={"email": stack.email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    response = await client.post(
        JOBS, json={"job_name": "before the outage", "job_type": "simple"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return headers


async def _assert_lists_one_job(client: AsyncClient, headers: dict[str, str]) -> None:
    response, elapsed = await timed(client.get(JOBS, headers=headers), "GET /api/users/jobs")
    assert response.status_code == 200, (response.status_code, response.text, elapsed)
    body = response.json()
    assert body["total"] == 1
    assert [job["job_name"] for job in body["jobs"]] == ["before the outage"]


async def _assert_unavailable(client: AsyncClient, headers: dict[str, str]) -> dict[str, float]:
    """During the outage: the API answers 503 fast, readiness fails fast, liveness holds."""
    elapsed: dict[str, float] = {}

    response, elapsed["jobs"] = await timed(client.get(JOBS, headers=headers), "GET jobs")
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.json() == {
        "detail": "Service temporarily unavailable, try again shortly",
        "success": False,
    }
    assert response.headers["retry-after"] == "5"
    assert elapsed["jobs"] < LIVENESS_BOUND, elapsed

    response, elapsed["write"] = await timed(
        client.post(JOBS, json={"job_name": "during", "job_type": "simple"}, headers=headers),
        "POST jobs",
    )
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.json()["success"] is False
    assert elapsed["write"] < LIVENESS_BOUND, elapsed

    response, elapsed["readyz"] = await timed(client.get("/readyz"), "GET /readyz")
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.json()["success"] is False
    assert elapsed["readyz"] < LIVENESS_BOUND, elapsed

    response, elapsed["healthz"] = await timed(client.get("/healthz"), "GET /healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert elapsed["healthz"] < 1, elapsed  # touches no database at all
    return elapsed


@pytest.mark.parametrize(
    ("mode", "freeze_existing"),
    [
        pytest.param(REFUSE, False, id="refused"),
        pytest.param(BLACKHOLE, False, id="blackholed"),
        # A partition mid-flight: the pooled connections stay open and go silent, so only the
        # client-side timeouts (command_timeout, the pre-ping) can notice.
        pytest.param(BLACKHOLE, True, id="partitioned-with-open-connections"),
    ],
)
async def test_outage_answers_503_fast_and_recovers_without_a_restart(
    stack: Stack, mode: Cut, freeze_existing: bool
) -> None:
    client = stack.client
    headers = await _sign_up(stack)
    await _assert_lists_one_job(client, headers)
    assert stack.proxy.open_connections >= 1  # the pool kept a connection through the proxy

    await stack.proxy.cut(mode, freeze_existing=freeze_existing)
    elapsed = await _assert_unavailable(client, headers)
    # A second round: what the first failure left in the pool fails fast too.
    elapsed_again = await _assert_unavailable(client, headers)

    await stack.proxy.restore()
    # Same app, same client, same token: no restart, the pool heals itself.
    await _assert_lists_one_job(client, headers)
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    print(f"{mode.value} freeze={freeze_existing}: {elapsed} then {elapsed_again}")


async def test_a_database_restart_while_idle_costs_no_request(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pooled connection dies while the app is idle (a PostgreSQL restart or failover);
    the database is back before the next request, which must not notice: a connection that
    sat idle is pinged and, if dead, replaced before use."""
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.2)
    client = stack.client
    headers = await _sign_up(stack)
    # Several requests at once, so the pool holds more than one idle connection.
    responses = await asyncio.gather(*(client.get(JOBS, headers=headers) for _ in range(5)))
    assert all(r.status_code == 200 for r in responses)
    pooled = stack.proxy.open_connections
    assert pooled >= 2

    await stack.proxy.cut(REFUSE)  # resets every open connection
    assert stack.proxy.open_connections == 0
    await asyncio.sleep(0.3)  # a restart takes longer than the idle threshold
    await stack.proxy.restore()

    for _ in range(pooled + 1):  # each pooled connection is pinged once, then replaced
        await _assert_lists_one_job(client, headers)
        assert (await client.get("/readyz")).status_code == 200


async def test_requests_in_flight_when_the_link_goes_silent_do_not_hang(stack: Stack) -> None:
    """Requests already waiting on the database when the partition starts end with a 503
    within the bound (command_timeout), and the ones after the heal succeed."""
    client = stack.client
    headers = await _sign_up(stack)
    await _assert_lists_one_job(client, headers)

    async def five_gets() -> list[httpx.Response]:
        return list(await asyncio.gather(*(client.get(JOBS, headers=headers) for _ in range(5))))

    # A slow link, so that the requests are surely mid-query when it goes silent.
    stack.proxy.latency = 0.3
    in_flight = asyncio.ensure_future(timed(five_gets(), "in-flight GETs"))
    await asyncio.sleep(0.2)
    forwarded_before_cut = stack.proxy.open_connections
    await stack.proxy.cut(BLACKHOLE, freeze_existing=True)
    responses, elapsed = await in_flight
    statuses = [r.status_code for r in responses]
    assert forwarded_before_cut >= 1
    assert statuses == [503] * 5, [(r.status_code, r.text) for r in responses]
    assert elapsed < LIVENESS_BOUND, elapsed

    stack.proxy.latency = 0.0
    await stack.proxy.restore()
    await _assert_lists_one_job(client, headers)
    print(f"in flight: 5 x 503 after {elapsed:.2f} s")


async def test_a_burst_during_a_partition_fails_fast_even_with_the_pool_exhausted(
    stack: Stack,
) -> None:
    """More requests than the pool holds (10 + 10 overflow) arrive during a partition: those
    that get no connection give up after the pool timeout, the others after the connect
    timeout. Every one answers 503 within the bound, and /readyz, queued behind them, too."""
    client = stack.client
    headers = await _sign_up(stack)
    await _assert_lists_one_job(client, headers)
    await stack.proxy.cut(BLACKHOLE, freeze_existing=True)

    async def burst() -> list[httpx.Response]:
        gets = [client.get(JOBS, headers=headers) for _ in range(40)]
        return list(await asyncio.gather(*gets, client.get("/readyz")))

    responses, elapsed = await timed(burst(), "a burst of 40 GETs and /readyz")
    assert [r.status_code for r in responses] == [503] * 41, sorted(
        {(r.status_code, r.text) for r in responses}
    )
    assert elapsed < LIVENESS_BOUND, elapsed

    await stack.proxy.restore()
    await _assert_lists_one_job(client, headers)
    print(f"burst: 41 x 503 after {elapsed:.2f} s")

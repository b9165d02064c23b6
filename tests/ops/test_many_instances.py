"""Many instances, for real: two `python -m app serve` processes share one PostgreSQL database,
one Redis and one SECRET_KEY. Whatever one instance does, the other sees: its tokens, its jobs,
its failed-login count and its logouts."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import Redis

from app.auth.throttle import LoginThrottle
from tests.ops.servers import Server, ServerStarter, free_port, server_env

pytestmark = pytest.mark.postgres_only

REDIS_URL = "redis://127.0.0.1:6379/14"
SECRET_KEY = "ops-instances-secret-key-0123456789abcde"  # 40 characters
PASSWORD = "ops instances password"
MAX_FAILURES = 3
CLIENT = "127.0.0.1"  # both servers see the test's loopback address


@pytest.fixture
def two_servers(ops_database_url: str, servers: ServerStarter) -> tuple[Server, Server]:
    shared = {
        "DATABASE_URL": ops_database_url,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": SECRET_KEY,
        "LOGIN_MAX_FAILURES": str(MAX_FAILURES),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "1",
        "ENVIRONMENT": "test",
    }
    a = servers("instance-a", server_env(PORT=str(free_port()), **shared))
    b = servers("instance-b", server_env(PORT=str(free_port()), **shared))
    return a, b


def _redis_key(email: str) -> str:
    return "login-failures:" + LoginThrottle.key(email, CLIENT)


@pytest.fixture
async def new_email() -> AsyncIterator[Callable[[], str]]:
    """Fresh account emails; their failure counters (and nothing else) are deleted from Redis."""
    made: list[str] = []

    def make() -> str:
        made.append(f"instances-{uuid.uuid4().hex[:12]}@example.com")
        return made[-1]

    yield make
    if made:
        redis = Redis.from_url(REDIS_URL)
        try:
            await redis.delete(*(_redis_key(email) for email in made))
        finally:
            await redis.aclose()


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    response = await client.post("/api/auth/login", json={"email": email, "password": password})
    client.cookies.clear()  # Bearer only: each instance must accept the token by itself
    return response


async def test_a_second_instance_sees_what_the_first_did(
    two_servers: tuple[Server, Server], new_email: Callable[[], str]
) -> None:
    a_server, b_server = two_servers
    email = new_email()
    async with (
        httpx.AsyncClient(base_url=a_server.url, timeout=30) as a,
        httpx.AsyncClient(base_url=b_server.url, timeout=30) as b,
    ):
        registered = await a.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text

        # A token issued by A works on B.
        login = await _login(a, email, PASSWORD)
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        me = await b.get("/api/users/me", headers=auth)
        assert me.status_code == 200, me.text
        assert me.json()["user"]["email"] == email

        # A job submitted through A is listed by B.
        submitted = await a.post(
            "/api/users/jobs", json={"job_name": "shared", "job_type": "simple"}, headers=auth
        )
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["job"]["job_id"]
        listed = await b.get("/api/users/jobs", headers=auth)
        assert listed.status_code == 200
        assert [job["job_id"] for job in listed.json()["jobs"]] == [job_id]
        assert (await b.get(f"/api/users/jobs/{job_id}", headers=auth)).status_code == 200

        # A logout on A ends the session on B too.
        logout = await a.post("/api/auth/logout", headers=auth)
        assert logout.status_code == 200, logout.text
        assert (await b.get("/api/users/me", headers=auth)).status_code == 401
        assert (await a.get("/api/users/me", headers=auth)).status_code == 401


async def test_failed_logins_on_one_instance_throttle_the_other(
    two_servers: tuple[Server, Server], new_email: Callable[[], str]
) -> None:
    a_server, b_server = two_servers
    email, other_email = new_email(), new_email()
    async with (
        httpx.AsyncClient(base_url=a_server.url, timeout=30) as a,
        httpx.AsyncClient(base_url=b_server.url, timeout=30) as b,
    ):
        registered = await a.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert registered.status_code == 201, registered.text

        failures = await asyncio.gather(
            *(_login(a, email, "not the password") for _ in range(MAX_FAILURES))
        )
        assert [response.status_code for response in failures] == [401] * MAX_FAILURES

        # B refuses even the right password: the count lives in Redis, not in A's memory.
        refused = await _login(b, email, PASSWORD)
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["retry-after"]) <= 15 * 60
        assert (await _login(a, email, PASSWORD)).status_code == 429

        redis = Redis.from_url(REDIS_URL)
        try:
            key = _redis_key(email)
            assert int(await redis.get(key) or 0) == MAX_FAILURES
            assert await redis.ttl(key) > 0
        finally:
            await redis.aclose()

        # Another account from the same client is not affected.
        other = await _login(b, other_email, "whatever password")
        assert other.status_code == 401

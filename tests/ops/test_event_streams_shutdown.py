"""Open event streams do not hold a graceful stop hostage: `python -m app serve` with streams
open gets SIGTERM, every stream ends cleanly (the client sees the end of the response, not a
cut connection) and the process exits well before GRACEFUL_SHUTDOWN_SECONDS. Without the
streams being told, uvicorn would wait out the whole grace period and then cut them."""

import asyncio
import time
import uuid
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.jobs.event_streams import open_stream
from tests.ops.servers import ServerStarter, refuses_connections, stopping_server_env

pytestmark = pytest.mark.postgres_only

SECRET_KEY = "ops-events-secret-key-0123456789abcdef"
PASSWORD = "ops events password"
GRACE = 30
STREAMS = 4


async def _token(client: httpx.AsyncClient) -> str:
    email = f"events-stop-{uuid.uuid4().hex[:12]}@example.com"
    account = {"email": email, "password": PASSWORD}
    assert (await client.post("/api/auth/register", json=account)).status_code == 201
    response = await client.post("/api/auth/login", json=account)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
async def test_sigterm_ends_open_streams_and_the_process_exits_promptly(
    workers: int, ops_database_url: str, servers: ServerStarter
) -> None:
    env = stopping_server_env(ops_database_url, SECRET_KEY, GRACE, workers)
    server = servers("events-stop", env)
    async with httpx.AsyncClient(base_url=server.url, timeout=GRACE + 10) as client:
        headers = {"Authorization": f"Bearer {await _token(client)}"}
        async with AsyncExitStack() as stack:
            streams = [
                await stack.enter_async_context(open_stream(client, headers))
                for _ in range(STREAMS)
            ]
            for stream in streams:
                assert (await stream.next()).name == "stats"

            server.terminate()
            signalled_at = time.monotonic()
            # Each ends as a complete response: a cut connection would raise here.
            for stream in streams:
                assert await stream.ends(within=GRACE / 2) == []

    returncode = await asyncio.to_thread(server.process.wait, GRACE + 10)
    took = time.monotonic() - signalled_at
    log = server.log()
    assert returncode == 0, log
    assert took < GRACE / 2, f"exit took {took:.1f}s\n{log}"
    assert "timeout graceful shutdown exceeded" not in log
    assert "Application shutdown complete" in log
    assert refuses_connections(server.port)

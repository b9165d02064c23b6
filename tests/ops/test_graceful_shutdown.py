"""Graceful shutdown, for real: `python -m app serve` gets SIGTERM while logins are in flight.

The server must stop accepting connections, finish every request it already has (each answers
200), and exit within GRACEFUL_SHUTDOWN_SECONDS. Nothing here depends on timing: a request
counts as in flight once its bytes were sent and the server's socket has none left unread
(/proc/net/tcp), and one "slow upload" login keeps half its body back until the server is seen
refusing new connections, so at least one request is provably in flight during the shutdown.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.ops.servers import (
    Server,
    ServerStarter,
    established_receive_queues,
    refuses_connections,
    stopping_server_env,
)

pytestmark = pytest.mark.postgres_only

SECRET_KEY = "ops-shutdown-secret-key-0123456789abcdef"  # 40 characters
PASSWORD = "ops shutdown password"
IN_FLIGHT = 8
# A clean shutdown exits 0 (`python -m app serve` keeps uvicorn from re-raising the SIGTERM).
CLEAN_EXITS = (0,)


def _env(database_url: str, grace_seconds: int, workers: int = 1) -> dict[str, str]:
    return stopping_server_env(
        database_url,
        SECRET_KEY,
        grace_seconds,
        workers,
        # The logins in flight all come from this one client: its password checks must queue,
        # not be refused, however slowly a loaded machine hashes them.
        CLIENT_MAX_CONCURRENT_PASSWORD_CHECKS=str(IN_FLIGHT + 1),
        PASSWORD_HASH_MAX_WAIT_SECONDS=str(grace_seconds),
    )


def _register(server: Server) -> str:
    email = f"shutdown-{uuid.uuid4().hex[:12]}@example.com"
    response = httpx.post(
        f"{server.url}/api/auth/register",
        json={"email": email, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return email


async def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting after {seconds}s: {what}")
        await asyncio.sleep(0.01)


class SlowUpload:
    """A login whose body arrives in two parts: in flight for as long as the test wants."""

    def __init__(self, port: int, email: str) -> None:
        self.port = port
        self.body = json.dumps({"email": email, "password": PASSWORD}).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (
            "POST /api/auth/login HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\n"
            "X-Request-ID: slow-upload\r\n"
            "\r\n"
        ).encode()
        self.writer.write(head + self.body[: len(self.body) // 2])
        await self.writer.drain()

    async def finish(self, within: float) -> tuple[int, dict[str, str], bytes]:
        """Sends the rest of the body; reads the answer until the server closes."""
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(self.body[len(self.body) // 2 :])
        await self.writer.drain()
        raw = await asyncio.wait_for(self.reader.read(), timeout=within)
        return _parse_response(raw)

    async def read_until_closed(self, within: float) -> bytes:
        assert self.reader is not None
        try:
            return await asyncio.wait_for(self.reader.read(), timeout=within)
        except ConnectionResetError:
            return b""

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
async def test_sigterm_lets_in_flight_requests_finish_then_exits(
    workers: int, ops_database_url: str, servers: ServerStarter
) -> None:
    grace = 20
    server = servers("shutdown", _env(ops_database_url, grace, workers))
    email = _register(server)
    sent = 0

    async def count_sent(event: str, _info: dict[str, Any]) -> None:
        nonlocal sent
        if event == "http11.send_request_body.complete":
            sent += 1

    slow = SlowUpload(server.port, email)
    logins: list[asyncio.Task[httpx.Response]] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=grace + 10) as client:
        try:
            await slow.start()
            logins += [
                asyncio.create_task(
                    client.post(
                        "/api/auth/login",
                        json={"email": email, "password": PASSWORD},
                        headers={"X-Request-ID": f"in-flight-{i}"},
                        extensions={"trace": count_sent},
                    )
                )
                for i in range(IN_FLIGHT)
            ]

            def all_in_the_servers_hands() -> bool:
                queues = established_receive_queues(server.port)
                return sent == IN_FLIGHT and len(queues) >= IN_FLIGHT + 1 and not any(queues)

            await _wait_for(all_in_the_servers_hands, "the requests to reach the server")
            unfinished_at_signal = sum(not task.done() for task in logins)
            server.terminate()
            signalled_at = time.monotonic()

            # Every worker starts its shutdown (one process: its listener closes at once) while
            # the slow upload is still open.
            await _wait_for(
                lambda: server.log().count("Shutting down") >= workers, "the shutdown to start"
            )
            if workers == 1:
                await _wait_for(lambda: refuses_connections(server.port), "the listener to close")
            assert server.running
            status, headers, body = await slow.finish(within=grace)
            answers = await asyncio.wait_for(asyncio.gather(*logins), timeout=grace + 5)
        finally:
            slow.close()
            for login in logins:
                login.cancel()

    assert status == 200, body
    assert json.loads(body)["access_token"]
    assert headers.get("connection") == "close"  # no keep-alive while shutting down
    assert headers.get("x-request-id") == "slow-upload"
    for answer in answers:
        assert answer.status_code == 200, (answer.text, f"{unfinished_at_signal} were running")
        assert answer.json()["access_token"]

    returncode = await asyncio.to_thread(server.process.wait, grace + 10)
    took = time.monotonic() - signalled_at
    log = server.log()
    assert returncode in CLEAN_EXITS, log
    assert took < grace, f"exit took {took:.1f}s"
    assert "Application shutdown complete" in log
    assert "timeout graceful shutdown exceeded" not in log
    # Every login, the slow one included, was answered and logged before the process ended.
    assert log.count("POST /api/auth/login 200") == IN_FLIGHT + 1, log
    assert "[slow-upload]" in log
    assert refuses_connections(server.port)


async def test_a_request_that_outlives_the_grace_period_does_not_hold_the_exit(
    ops_database_url: str, servers: ServerStarter
) -> None:
    grace = 2
    server = servers("stalled", _env(ops_database_url, grace))
    slow = SlowUpload(server.port, "stalled@example.com")
    try:
        await slow.start()
        await _wait_for(
            lambda: established_receive_queues(server.port) == [0],
            "the stalled request to reach the server",
        )
        server.terminate()
        signalled_at = time.monotonic()

        returncode = await asyncio.to_thread(server.process.wait, grace + 15)
        took = time.monotonic() - signalled_at
        leftover = await slow.read_until_closed(within=5)
    finally:
        slow.close()

    log = server.log()
    assert returncode in CLEAN_EXITS, log
    assert grace <= took < grace + 10, f"exit took {took:.1f}s"
    assert "timeout graceful shutdown exceeded" in log
    assert b"200 OK" not in leftover
    assert refuses_connections(server.port)

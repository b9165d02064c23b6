"""Slow clients, for real: `python -m app serve` with a few hundred half-sent requests from one
client. Ordinary requests are answered meanwhile, and every connection that has not delivered
its request in full within REQUEST_READ_TIMEOUT_SECONDS is closed by the server; a request that
is slow but completes in time is answered. Endless request headers are cut off too."""

import contextlib
import select
import socket
import time

import httpx
import pytest

from tests.ops.servers import Server, ServerStarter, free_port, server_env

pytestmark = pytest.mark.postgres_only

READ_TIMEOUT = 2.0
# How the slow connections misbehave, and how many of each.
SILENT = 50  # connect, send nothing
HALF_HEADERS = 200  # a request line and some headers, never the blank line that ends them
SHORT_BODY = 50  # complete headers, a body that stops short of its Content-Length


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setblocking(False)
    return sock


def _open_slow_connections(server: Server) -> list[socket.socket]:
    sockets = []
    for _ in range(SILENT):
        sockets.append(_connect(server))
    for i in range(HALF_HEADERS):
        sock = _connect(server)
        sock.sendall(f"GET /api/users/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: {i}\r\n".encode())
        sockets.append(sock)
    for _ in range(SHORT_BODY):
        sock = _connect(server)
        sock.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"email": "a@'
        )
        sockets.append(sock)
    return sockets


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


def _wait_until_closed(sockets: list[socket.socket], deadline: float) -> list[socket.socket]:
    """The sockets still open at the deadline."""
    open_ = list(sockets)
    while open_ and time.monotonic() < deadline:
        readable, _, _ = select.select(open_, [], [], 0.2)
        for sock in readable:
            if _closed_by_server(sock):
                open_.remove(sock)
    return open_


def _slow_but_complete(server: Server) -> bytes:
    """A request whose headers arrive in three pieces, well within the deadline."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for piece in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n\r\n"):
            sock.sendall(piece)
            time.sleep(READ_TIMEOUT / 5)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def _start(servers: ServerStarter, database_url: str) -> Server:
    return servers(
        "slow-clients",
        server_env(
            DATABASE_URL=database_url,
            HOST="127.0.0.1",
            PORT=str(free_port()),
            ENVIRONMENT="test",
            SECRET_KEY="ops-slow-clients-secret-key-0123456789abc",
            LOG_FORMAT="console",
            REQUEST_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT),
        ),
    )


def test_half_sent_requests_are_closed_and_never_crowd_out_real_ones(
    servers: ServerStarter, ops_database_url: str
) -> None:
    server = _start(servers, ops_database_url)
    sockets = _open_slow_connections(server)
    opened_at = time.monotonic()
    try:
        # With every slow connection held open, the service still answers.
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        unknown = httpx.post(
            f"{server.url}/api/auth/login",
            json={"email": "nobody@example.com", "password": "a guess"},
            timeout=10,
        )
        assert unknown.status_code == 401
        assert _slow_but_complete(server).startswith(b"HTTP/1.1 200")

        still_open = _wait_until_closed(sockets, opened_at + READ_TIMEOUT + 5)

        assert still_open == [], f"{len(still_open)} of {len(sockets)} slow connections open"
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        assert server.running
    finally:
        for sock in sockets:
            sock.close()


def _send_headers(server: Server, headers: bytes) -> bytes:
    """Sends a request with these header lines as fast as it can; what the server answers."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # Closed while we were still sending: the answer is already waiting.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"Connection: close" not in headers and b"\r\n\r\n" in answer:
                    break
        except ConnectionResetError:
            pass
        return answer


def test_endless_request_headers_are_cut_off_with_431(
    servers: ServerStarter, ops_database_url: str
) -> None:
    server = _start(servers, ops_database_url)

    huge_value = _send_headers(server, b"X-Big: " + b"a" * (1024 * 1024) + b"\r\n")
    many = _send_headers(server, b"".join(b"X-H%d: v\r\n" % i for i in range(20_000)))
    ordinary = _send_headers(server, b"X-Fine: " + b"a" * 8192 + b"\r\nConnection: close\r\n")

    for answer in (huge_value, many):
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert b"Request header fields too large" in answer
    assert ordinary.startswith(b"HTTP/1.1 200"), ordinary[:200]
    assert server.running

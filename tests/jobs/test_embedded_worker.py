"""The embedded default: `python -m app serve` on SQLite runs jobs itself, with no worker to
start (what `make run` gives a newcomer). A real server process on a SQLite file of its own,
whatever database the rest of the suite uses."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command

from app.__main__ import main as cli
from tests.apps import TEST_SECRET_KEY
from tests.conftest import alembic_config
from tests.factories import PASSWORD
from tests.ops.servers import Server, ServerStarter, free_port, server_env

EMAIL = "newcomer@example.com"


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/jobs.db"
    command.upgrade(alembic_config(url), "head")
    monkeypatch.setenv("DATABASE_URL", url)
    from app.core.config import get_settings

    get_settings.cache_clear()
    assert cli(["create-user", "--email", EMAIL, "--password", PASSWORD]) == 0
    get_settings.cache_clear()
    return url


@pytest.fixture
def serve(sqlite_url: str, servers: ServerStarter) -> Callable[[str], Server]:
    def start(name: str) -> Server:
        env = server_env(
            DATABASE_URL=sqlite_url,
            SECRET_KEY=TEST_SECRET_KEY,
            ENVIRONMENT="test",
            PORT=str(free_port()),
            LOG_FORMAT="console",
        )
        return servers(name, env)

    return start


def _login(server: Server) -> dict[str, str]:
    response = httpx.post(
        f"{server.url}/api/auth/login", json={"email": EMAIL, "password": PASSWORD}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _submit(server: Server, headers: dict[str, str], name: str, seconds: float) -> dict[str, Any]:
    """A `simple` job that sleeps `seconds`, as the API answers its submit."""
    job: dict[str, Any] = httpx.post(
        f"{server.url}/api/users/jobs",
        json={"job_name": name, "job_type": "simple", "parameters": {"seconds": seconds}},
        headers=headers,
    ).json()["job"]
    return job


def _wait_for(server: Server, headers: dict[str, str], job_id: int, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        job: dict[str, Any] = httpx.get(
            f"{server.url}/api/users/jobs/{job_id}", headers=headers
        ).json()["job"]
        if job["status"] == status:
            return job
        assert time.monotonic() < deadline, f"{job}\n{server.tail()}"
        time.sleep(0.05)


def test_a_simple_job_goes_pending_running_completed_with_nothing_else_started(
    serve: Any,
) -> None:
    server = serve("api")
    headers = _login(server)

    submitted = _submit(server, headers, "hello", seconds=1)
    running = _wait_for(server, headers, submitted["job_id"], "running")
    done = _wait_for(server, headers, submitted["job_id"], "completed")

    assert submitted["status"] == "pending"
    assert running["started_at"] is not None
    assert done["result"] == {"slept": 1}
    assert done["attempts"] == 1


def test_a_job_left_running_by_a_killed_server_runs_again_after_a_restart(serve: Any) -> None:
    first = serve("first")
    headers = _login(first)
    job_id = _submit(first, headers, "interrupted", seconds=2)["job_id"]
    _wait_for(first, headers, job_id, "running")

    first.kill()  # SIGKILL: the in-memory queue is gone with it
    second = serve("second")
    done = _wait_for(second, headers, job_id, "completed")

    assert done["attempts"] == 2


def test_cancelling_a_running_job_stops_it(serve: Any) -> None:
    server = serve("api")
    headers = _login(server)
    job_id = _submit(server, headers, "long", seconds=30)["job_id"]
    _wait_for(server, headers, job_id, "running")

    cancelled = httpx.post(f"{server.url}/api/users/jobs/{job_id}/cancel", headers=headers)
    time.sleep(1.5)  # the handler would report progress every second
    later = httpx.get(f"{server.url}/api/users/jobs/{job_id}", headers=headers).json()["job"]

    assert cancelled.status_code == 200
    assert later == cancelled.json()["job"]
    assert "job cancelled while running" in server.log()

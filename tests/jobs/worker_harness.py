"""Real `python -m app worker` processes against a database of their own, and an in-process API
on the same database, for the tests that need jobs to actually run (PostgreSQL only).

Data is committed (worker processes cannot see a test's open transaction): every test starts
from empty jobs and queue tables. Workers are killed, by process group, when the test ends.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from tests.apps import TEST_SECRET_KEY, make_settings, open_app
from tests.factories import bearer, create_user
from tests.ops.servers import AppProcess, launch, server_env

TERMINAL = frozenset({"completed", "failed", "cancelled"})
READY_TIMEOUT = 30.0
# Short enough that a test sees a killed worker's job taken back in a few seconds.
FAST_RECOVERY = {
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "WORKER_STALLED_SECONDS": "2",
    "WORKER_RECOVERY_INTERVAL_SECONDS": "1",
}


async def wait_registered(worker: AppProcess, engine: AsyncEngine, registered_before: int) -> None:
    """Until the worker has registered itself with the engine. Awaits, so that what the test
    runs on its event loop (a TCP proxy) keeps serving."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not worker.running:
            raise RuntimeError(f"{worker.name} exited early:\n{worker.log()[-3000:]}")
        if await _last_worker_id(engine) > registered_before:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{worker.name} not ready in {READY_TIMEOUT}s:\n{worker.log()[-3000:]}")


@dataclass
class Pipeline:
    database_url: str
    engine: AsyncEngine
    client: AsyncClient
    settings: Settings
    workdir: Path
    workers: list[AppProcess] = field(default_factory=list)

    async def start_worker(
        self, name: str = "worker", *, database_url: str | None = None, **env: str
    ) -> AppProcess:
        settings = {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url or self.database_url,
            "SECRET_KEY": TEST_SECRET_KEY,
            "LOG_FORMAT": "console",
            "WORKER_CONCURRENCY": "10",
            **env,
        }
        registered_before = await _last_worker_id(self.engine)
        worker = launch("worker", name, server_env(**settings), workdir=self.workdir)
        self.workers.append(worker)
        await wait_registered(worker, self.engine, registered_before)
        return worker

    async def user(self) -> dict[str, str]:
        async with create_sessionmaker(self.engine)() as session:
            user = await create_user(session)
        return bearer(user, self.settings)

    async def submit(
        self, headers: dict[str, str], request_id: str | None = None, **parameters: Any
    ) -> int:
        extra = {"X-Request-ID": request_id} if request_id else {}
        response = await self.client.post(
            "/api/users/jobs",
            json={"job_name": "run me", "job_type": "simple", "parameters": parameters},
            headers={**headers, **extra},
        )
        assert response.status_code == 201, response.text
        return int(response.json()["job"]["job_id"])

    async def job(self, headers: dict[str, str], job_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/api/users/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()["job"]
        return job

    async def wait_for(
        self,
        headers: dict[str, str],
        job_id: int,
        statuses: Iterable[str],
        within: float = 20.0,
    ) -> dict[str, Any]:
        wanted = set(statuses)
        deadline = time.monotonic() + within
        job = await self.job(headers, job_id)
        while job["status"] not in wanted:
            if time.monotonic() > deadline:
                logs = "\n".join(w.log()[-2000:] for w in self.workers)
                raise AssertionError(f"job {job_id} still {job['status']}: {job}\n{logs}")
            await asyncio.sleep(0.05)
            job = await self.job(headers, job_id)
        return job

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(sql), params)

    async def work_statuses(self, job_id: int) -> list[str]:
        """The statuses of the engine's work for the job, oldest first."""
        found = await self.rows(
            "SELECT status FROM procrastinate_jobs WHERE queueing_lock = :key ORDER BY id",
            key=f"job-{job_id}",
        )
        return [str(status) for (status,) in found]


async def _last_worker_id(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        found = await connection.scalar(text("SELECT max(id) FROM procrastinate_workers"))
    return int(found or 0)


async def reset(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "TRUNCATE procrastinate_events, procrastinate_periodic_defers, "
                "procrastinate_jobs, procrastinate_workers, jobs RESTART IDENTITY CASCADE"
            )
        )


@contextlib.asynccontextmanager
async def pipeline(database_url: str, workdir: Path) -> AsyncIterator[Pipeline]:
    settings = make_settings(database_url)
    engine = create_engine(database_url)
    try:
        await reset(engine)
        async with open_app(settings, raise_app_exceptions=False) as api:
            running = Pipeline(
                database_url=database_url,
                engine=engine,
                client=api.client,
                settings=settings,
                workdir=workdir,
            )
            try:
                yield running
            finally:
                for worker in running.workers:
                    worker.kill()
    finally:
        await engine.dispose()


def unique_request_id() -> str:
    return f"submit-{uuid.uuid4().hex[:12]}"

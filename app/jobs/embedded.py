"""The embedded default: on SQLite the API process runs jobs itself, with the same handlers,
on procrastinate's in-memory queue. One process only; see docs/jobs.md for its limits."""

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import SessionHook, create_sessionmaker
from app.jobs.engine import EmbeddedWorkQueue, create_engine_app, work_args
from app.jobs.repository import JobRepository
from app.jobs.runner import WorkerRuntime

logger = logging.getLogger(__name__)


class EmbeddedWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        queue: EmbeddedWorkQueue,
        after_session: Sequence[SessionHook] = (),
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.sessionmaker = create_sessionmaker(engine)
        # This process's hooks (Database.after_session): no notification tells it of the
        # worker's commits on SQLite.
        self.after_session = after_session
        self.app: procrastinate.App = create_engine_app(settings)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.app.open_async()
        self.queue.app = self.app
        # The in-memory queue starts empty: every job a previous process left waiting or
        # running is queued again (a running one counts that run as an attempt).
        async with self.sessionmaker() as session:
            unfinished = await JobRepository(session).unfinished()
        for job_id, job_type in unfinished:
            await self.queue.defer(job_id, job_type, work_args(job_id, None))
        if unfinished:
            logger.info("queued %d unfinished job(s) again", len(unfinished))
        self._task = asyncio.create_task(
            self.app.run_worker_async(
                concurrency=self.settings.worker_concurrency,
                install_signal_handlers=False,
                shutdown_graceful_timeout=self.settings.worker_shutdown_grace_seconds,
                additional_context={
                    "runtime": WorkerRuntime(
                        sessionmaker=self.sessionmaker,
                        queue=self.queue,
                        after_session=self.after_session,
                    )
                },
                # The in-memory queue notifies in process: no polling needed but as a backstop.
                fetch_job_polling_interval=1.0,
                abort_job_polling_interval=0.5,
            ),
            name="embedded job worker",
        )

    async def stop(self) -> None:
        self.queue.app = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.app.close_async()

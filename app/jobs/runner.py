"""How a worker runs one job: claim the attempt, run the type's handler, record the outcome.

Every status change goes through JobService (its one state machine), so the API, the worker and
an admin obey one lifecycle; a change locks the job's row alone. Each step of a run (start,
progress, outcome) commits by itself: the usual case is one conditional UPDATE, and a worker's
connections run in autocommit (app/worker.py), so a step costs one round trip. A step of
several statements (a start found running already) needs no more: each of its writes is
conditional on the status it read, as it would have to be inside a transaction too. The engine
(procrastinate) owns delivery: retries, aborts, the recovery of work held by a worker that died.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import procrastinate
from asgi_correlation_id import correlation_id
from procrastinate.exceptions import JobAborted
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import Job as EngineJob
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.db import SessionHook
from app.jobs.engine import QUEUE, WorkQueue, task_name
from app.jobs.metrics import JOB_RUNS, QUEUE_DEPTH, RECOVERED
from app.jobs.queue_repository import QueueRepository
from app.jobs.service import JobService
from app.jobs.types import JobType, registered_types

logger = logging.getLogger(__name__)
T = TypeVar("T")

# A handler's progress is written at most this often (the last report always is).
PROGRESS_INTERVAL_SECONDS = 0.25


@dataclass
class WorkerRuntime:
    """What the tasks need from the process they run in (procrastinate's additional_context)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    queue: WorkQueue
    # Run when each step's session ends, after its commit, as for a request's
    # (Database.after_session): the embedded worker wakes its process's event streams.
    after_session: Sequence[SessionHook] = ()

    async def call(self, step: Callable[[JobService], Awaitable[T]]) -> T:
        """One step of a run, in a session of its own (a transaction of its own where the
        connections are not in autocommit: the embedded worker's)."""
        async with self.sessionmaker() as session:
            try:
                async with session.begin():
                    return await step(JobService(session, self.queue))
            finally:
                for hook in self.after_session:
                    hook(session)


class GaveUp(Exception):
    """The attempt failed and was the job's last: the engine must not retry it."""


class EngineRetry(BaseRetryStrategy):
    """Retries by the job's own count of attempts (JobService.start_attempt), which the
    runner turns into GaveUp on the last one; a worker's shutdown puts the work straight back."""

    def __init__(self, wait_seconds: int) -> None:
        self.wait_seconds = wait_seconds

    def get_retry_decision(
        self, *, exception: BaseException, job: EngineJob
    ) -> RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError):
            return RetryDecision(retry_in={"seconds": 0})
        if isinstance(exception, GaveUp | JobAborted):
            return None
        return RetryDecision(retry_in={"seconds": self.wait_seconds})


class _Run:
    """The handler's JobRun: progress goes to the job row."""

    def __init__(self, runtime: WorkerRuntime, job_id: int, attempt: int) -> None:
        self.runtime = runtime
        self.job_id = job_id
        self.attempt = attempt
        self.cancelled = False
        self._last_write = 0.0

    async def progress(self, percent: float, message: str | None = None) -> None:
        now = time.monotonic()
        if percent < 100 and now - self._last_write < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_write = now
        still_running = await self.runtime.call(
            lambda jobs: jobs.report_progress(self.job_id, percent, message)
        )
        if not still_running:
            # Cancelled (or moved by an admin) meanwhile: stop here.
            self.cancelled = True
            raise asyncio.CancelledError


def _describe(exc: BaseException, job_type: JobType) -> str:
    if isinstance(exc, TimeoutError):
        return f"Timed out after {job_type.timeout_seconds:g} s"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, GaveUp) else f"{type(exc).__name__}: {text}"


async def run_job(
    job_type: JobType, context: JobContext, job_id: int, request_id: str | None = None
) -> None:
    runtime: WorkerRuntime = context.additional_context["runtime"]
    token = correlation_id.set(request_id or "-")
    log = {"job_id": job_id, "job_type": job_type.name}
    started_at = time.monotonic()
    outcome = "skipped"
    try:
        job = await runtime.call(lambda jobs: jobs.start_attempt(job_id, job_type.max_attempts))
        if job is None:
            logger.info("job not run: no longer waiting to run", extra=log)
            return
        log["attempt"] = job.attempts
        logger.info("job started", extra=log)
        params = job_type.parameters.model_validate(job.parameters or {})
        run = _Run(runtime, job_id, job.attempts)
        try:
            async with asyncio.timeout(job_type.timeout_seconds):
                result: JsonValue = await job_type.handler(params, run)
        except asyncio.CancelledError:
            if context.abort_reason() == AbortReason.SHUTDOWN:
                outcome = "interrupted"
                await asyncio.shield(runtime.call(lambda jobs: jobs.give_back_attempt(job_id)))
                logger.info("job interrupted by the worker's shutdown: queued again", extra=log)
                raise
            outcome = "cancelled"
            logger.info("job cancelled while running", extra=log)
            raise JobAborted from None
        except Exception as exc:
            error = _describe(exc, job_type)
            if job.attempts >= job_type.max_attempts:
                outcome = "failed"
                await runtime.call(lambda jobs: jobs.fail(job_id, error))
                logger.warning("job failed: %s", error, extra={**log, "outcome": outcome})
                raise GaveUp(error) from exc
            outcome = "retried"
            await runtime.call(lambda jobs: jobs.note_error(job_id, error))
            logger.info("job attempt failed, to retry: %s", error, extra=log)
            raise
        recorded = await runtime.call(lambda jobs: jobs.complete(job_id, result))
        outcome = "completed" if recorded else "dropped"
        logger.info("job %s", outcome, extra={**log, "outcome": outcome})
    finally:
        JOB_RUNS.labels(job_type.name, outcome).observe(time.monotonic() - started_at)
        correlation_id.reset(token)


def _task_for(job_type: JobType) -> Callable[..., Awaitable[None]]:
    async def task(context: JobContext, job_id: int, request_id: str | None = None) -> None:
        await run_job(job_type, context, job_id, request_id)

    return task


async def recover_stalled_work(app: procrastinate.App, stalled_seconds: float) -> int:
    """Work held by workers whose heartbeat stopped (killed, frozen, cut off) goes back to the
    queue; the job's next run counts it as an attempt (and fails it once they are used up)."""
    recovered = 0
    for work in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_seconds):
        try:
            await app.job_manager.retry_job(work)
        except procrastinate.exceptions.ConnectorException:
            continue  # another worker took it back first
        recovered += 1
    if recovered:
        RECOVERED.inc(recovered)
        logger.warning("took back %d piece(s) of work from stalled workers", recovered)
    return recovered


def register_tasks(app: procrastinate.App, settings: Settings, *, recovery: bool) -> None:
    """A task per job type; with `recovery`, the periodic check for stalled work (pointless
    for the embedded worker, alone with its in-memory queue)."""
    for job_type in registered_types().values():
        app.task(
            name=task_name(job_type.name),
            queue=QUEUE,
            pass_context=True,
            retry=EngineRetry(job_type.retry_wait_seconds),
        )(_task_for(job_type))

    if not recovery:
        return
    stalled_seconds = settings.worker_stalled_seconds

    # One check every few seconds across all workers (procrastinate defers each tick once).
    @app.periodic(cron=f"* * * * * */{settings.worker_recovery_interval_seconds}")
    @app.task(name="jobs.recover_stalled_work", queue=QUEUE, queueing_lock="recover")
    async def recover(timestamp: int) -> None:
        await recover_stalled_work(app, stalled_seconds)

    keep_hours = settings.worker_keep_finished_hours

    # The engine's record of finished work (the job rows keep their outcome): without this,
    # its tables grow by a row and a few events per job, and a row per recovery check.
    @app.periodic(cron="23 * * * *")
    @app.task(name="jobs.remove_finished_work", queue=QUEUE, queueing_lock="remove_finished")
    async def remove_finished_work(timestamp: int) -> None:
        await app.job_manager.delete_old_jobs(
            nb_hours=keep_hours, include_failed=True, include_cancelled=True, include_aborted=True
        )


async def refresh_queue_depth(runtime: WorkerRuntime) -> None:
    async with runtime.sessionmaker() as session:
        depth = await QueueRepository(session).depth_by_task()
    for job_type in registered_types():
        QUEUE_DEPTH.labels(job_type).set(depth.get(task_name(job_type), 0))

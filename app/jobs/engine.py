"""The task engine: procrastinate, with PostgreSQL as its queue.

Each job type is a procrastinate task (`jobs.<type>`); a job's queued work carries its id and
the submit's request id. On PostgreSQL the work is queued by the statement that inserts the job
(PostgresWorkQueue), so there is never a job row without queued work nor queued work without a
job row. The embedded default (SQLite) runs the same tasks in the API process on
procrastinate's in-memory queue (app/jobs/embedded.py); see docs/jobs.md for its limits.
"""

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import procrastinate
import psycopg
import psycopg_pool
from asgi_correlation_id import correlation_id
from procrastinate.testing import InMemoryConnector
from sqlalchemy import ColumnElement, String, Text, bindparam, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import IDLE_PING_SECONDS
from app.jobs.queue_repository import QueueRepository, defer_work, prefixed_key

logger = logging.getLogger(__name__)

# procrastinate's tables, types and functions all start so (its schema, applied by migration
# e41b7c9d2a63).
ENGINE_TABLE_PREFIX = "procrastinate_"
QUEUE = "jobs"
JOB_KEY_PREFIX = "job-"
JobId = TypeVar("JobId", int, ColumnElement[int])
RequestId = TypeVar("RequestId", str | None, ColumnElement[str])


def task_name(job_type: str) -> str:
    return f"jobs.{job_type}"


def job_key(job_id: int) -> str:
    """The queued work's queueing lock: at most one piece of work waits per job, and a cancel
    finds it (or the running one) by index. Not procrastinate's `lock`, which would make every
    fetch look for earlier work under the same lock."""
    return f"{JOB_KEY_PREFIX}{job_id}"


def work_args(job_id: JobId, request_id: RequestId) -> dict[str, JobId | RequestId]:
    """The task's arguments (app/jobs/runner.py): the job, and the request id of the submit,
    which ties the worker's log lines to the submit's."""
    return {"job_id": job_id, "request_id": request_id}


def _new_job_work(job_id: ColumnElement[int]) -> ColumnElement[Any]:
    return defer_work(
        queue=bindparam("work_queue", type_=String),
        task=bindparam("work_task", type_=String),
        key=prefixed_key(JOB_KEY_PREFIX, job_id),
        args=work_args(job_id, bindparam("work_request_id", type_=Text)),
    )


@dataclass(frozen=True, slots=True)
class NewJobWork:
    """What queues a new job's work in the statement that inserts the job: `sql`, given the
    job's id as that statement sees it, with its bound parameters `params`."""

    sql: Callable[[ColumnElement[int]], ColumnElement[Any]]
    params: dict[str, Any]


class WorkQueue(Protocol):
    """What the job service asks of the engine, within its unit of work."""

    async def enqueue(self, session: AsyncSession, job_id: int, job_type: str) -> None:
        """Queue the job's work; it commits (or rolls back) with the session."""

    def new_job_work(self, job_type: str) -> NewJobWork | None:
        """The SQL that queues a new job's work in the statement inserting the job, where the
        queue lives in the same database; None where the job must be enqueued after its insert."""

    async def withdraw(self, session: AsyncSession, job_id: int) -> None:
        """Cancel the job's waiting work, or abort its running work, with the session."""


class PostgresWorkQueue:
    async def enqueue(self, session: AsyncSession, job_id: int, job_type: str) -> None:
        await QueueRepository(session).defer(
            queue=QUEUE,
            task=task_name(job_type),
            key=job_key(job_id),
            args=work_args(job_id, correlation_id.get()),
        )

    def new_job_work(self, job_type: str) -> NewJobWork:
        params = {
            "work_queue": QUEUE,
            "work_task": task_name(job_type),
            "work_request_id": correlation_id.get(),
        }
        return NewJobWork(_new_job_work, params)

    async def withdraw(self, session: AsyncSession, job_id: int) -> None:
        await QueueRepository(session).withdraw(job_key(job_id))


class EmbeddedWorkQueue:
    """The in-process queue of the embedded default: work is queued once the session commits
    (a rollback queues nothing). A process that dies in between loses nothing: at start-up the
    embedded worker queues every job left pending or running (app/jobs/embedded.py)."""

    def __init__(self) -> None:
        self.app: procrastinate.App | None = None  # set while the embedded worker runs
        self._work_ids: dict[int, int] = {}
        self._pending: set[asyncio.Task[None]] = set()

    def new_job_work(self, job_type: str) -> None:
        return None  # queued in memory, once the job's insert commits

    async def enqueue(self, session: AsyncSession, job_id: int, job_type: str) -> None:
        args = work_args(job_id, correlation_id.get())  # read while still in the request
        self._after_commit(session, lambda: self.defer(job_id, job_type, args))

    async def withdraw(self, session: AsyncSession, job_id: int) -> None:
        self._after_commit(session, lambda: self._abort(job_id))

    async def defer(self, job_id: int, job_type: str, args: dict[str, Any]) -> None:
        if self.app is None:
            return
        try:
            work_id = await self.app.configure_task(
                task_name(job_type),
                queue=QUEUE,
                queueing_lock=job_key(job_id),
            ).defer_async(**args)
        except procrastinate.exceptions.AlreadyEnqueued:
            return
        self._work_ids[job_id] = work_id

    def forget(self, job_id: int) -> None:
        self._work_ids.pop(job_id, None)

    async def _abort(self, job_id: int) -> None:
        work_id = self._work_ids.pop(job_id, None)
        if self.app is not None and work_id is not None:
            await self.app.job_manager.cancel_job_by_id_async(work_id, abort=True)

    def _after_commit(
        self, session: AsyncSession, work: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Run `work` once the session commits; a rollback runs nothing."""
        loop = asyncio.get_running_loop()

        def _committed(_session: Session) -> None:
            task = loop.create_task(work())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        event.listen(session.sync_session, "after_commit", _committed, once=True)


def create_work_queue(settings: Settings) -> WorkQueue:
    if make_url(settings.database_url).get_backend_name() == "postgresql":
        return PostgresWorkQueue()
    return EmbeddedWorkQueue()


def psycopg_conninfo(database_url: str) -> str:
    """The same database as DATABASE_URL, spelled for psycopg (procrastinate's driver)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class _IdleCheck:
    """psycopg_pool's check, for connections that sat idle only (as the API's pool does,
    app/core/db.py): a connection the database dropped while idle is replaced before use, and
    one handed straight back and forth under load is not checked, a round trip per fetch and
    per finish saved."""

    def __init__(self) -> None:
        self._returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    async def returned(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._returned[connection] = time.monotonic()

    async def check(self, connection: psycopg.AsyncConnection[Any]) -> None:
        returned = self._returned.get(connection)
        if returned is None or time.monotonic() - returned >= IDLE_PING_SECONDS:
            await psycopg_pool.AsyncConnectionPool.check_connection(connection)


async def _autocommit(connection: psycopg.AsyncConnection[Any]) -> None:
    # Every query of procrastinate's is one statement (a call of one of its SQL functions): in
    # a transaction of its own it needs no BEGIN and no COMMIT, two of its three round trips.
    await connection.set_autocommit(True)


def _engine_pool(**options: Any) -> psycopg_pool.AsyncConnectionPool:
    """procrastinate's pool: connections in autocommit, checked only after sitting idle
    (procrastinate asks for every one to be checked)."""
    idle = _IdleCheck()
    return psycopg_pool.AsyncConnectionPool(
        **{**options, "configure": _autocommit, "check": idle.check, "reset": idle.returned}
    )


def create_engine_app(settings: Settings) -> procrastinate.App:
    """procrastinate's App with every job type's task registered; not yet opened."""
    from app.jobs.runner import register_tasks

    if settings.log_level != "DEBUG":
        # Our runner logs each job's start and outcome with its ids; procrastinate's own lines
        # (two per job, three per recovery check) would only repeat them.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
    connector: procrastinate.BaseConnector
    postgres = make_url(settings.database_url).get_backend_name() == "postgresql"
    if postgres:
        connector = procrastinate.PsycopgConnector(
            conninfo=psycopg_conninfo(settings.database_url),
            pool_factory=_engine_pool,
            min_size=1,
            # The jobs themselves use the SQLAlchemy pool; this one serves fetches, heartbeats
            # and the listener.
            max_size=max(4, settings.worker_concurrency // 4 + 2),
            kwargs={"connect_timeout": max(1, round(settings.database_timeout_seconds))},
        )
    else:
        connector = InMemoryConnector()
    app = procrastinate.App(connector=connector)
    register_tasks(app, settings, recovery=postgres)
    return app

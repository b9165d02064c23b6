"""The task engine's queue as the submit's and the cancel's own transaction sees it (PostgreSQL).

Written through procrastinate's versioned SQL functions, in the session's transaction: the job
row and its queued work commit together or not at all. A new job's work is queued by the very
statement that inserts the job (JobRepository.insert): one round trip for both."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Text,
    cast,
    func,
    literal,
    null,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import UserDefinedType


class _WorkToDefer(UserDefinedType[Any]):
    """procrastinate's row type for a piece of work to queue."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "procrastinate_job_to_defer_v1"


def _sql_value(value: object, text_type: type[String] = Text) -> ColumnElement[Any]:
    """A value as SQL, with its type spelled out (procrastinate's functions take no untyped
    parameter)."""
    if isinstance(value, ColumnElement):
        return value
    return literal(value, BigInteger if isinstance(value, int) else text_type)


def prefixed_key(prefix: str, job_id: ColumnElement[int]) -> ColumnElement[str]:
    """`prefix` followed by the job's id, for an id the database assigns in the statement."""
    return literal(prefix, Text) + cast(job_id, Text)


def defer_work(
    *,
    queue: str | ColumnElement[str],
    task: str | ColumnElement[str],
    key: str | ColumnElement[str],
    args: Mapping[str, object],
) -> ColumnElement[Any]:
    """Queues one piece of work where it is evaluated. Each value may be SQL: a bound
    parameter, or an expression of a job inserted by the same statement."""
    arguments = func.jsonb_build_object(
        *(part for name, value in args.items() for part in (literal(name, Text), _sql_value(value)))
    )
    work = func.row(
        _sql_value(queue, String),
        _sql_value(task, String),
        0,  # priority
        null(),  # procrastinate's lock: none (app/jobs/engine.py, job_key, says why)
        _sql_value(key),
        arguments,
        null(),  # scheduled for: now
    )
    return func.procrastinate_defer_jobs_v1(array([cast(work, _WorkToDefer())]))


# The job's queued work, waiting or running, found by its queueing lock: procrastinate's index
# covers waiting work, migration e41b7c9d2a63 adds one for running work.
_WITHDRAW = text(
    """
    SELECT procrastinate_cancel_job_v1(id, true, false) FROM procrastinate_jobs
    WHERE queueing_lock = :key AND status IN ('todo', 'doing')
    """
)

_DEPTH = text(
    "SELECT task_name, count(*) FROM procrastinate_jobs WHERE status = 'todo' GROUP BY task_name"
)


class QueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def defer(self, *, queue: str, task: str, key: str, args: Mapping[str, object]) -> None:
        await self.session.execute(select(defer_work(queue=queue, task=task, key=key, args=args)))

    async def withdraw(self, key: str) -> int:
        """Cancel the waiting work, or ask the running work to abort; how many were found."""
        return len((await self.session.execute(_WITHDRAW, {"key": key})).all())

    async def depth_by_task(self) -> dict[str, int]:
        return {task: count for task, count in await self.session.execute(_DEPTH)}

"""The task engine's queue as the submit's and the cancel's own transaction sees it (PostgreSQL).

Written through procrastinate's versioned SQL functions, in the session's transaction: the job
row and its queued work commit together or not at all."""

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_DEFER = text(
    """
    SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(
        CAST(:queue AS varchar), CAST(:task AS varchar), 0, NULL::text,
        CAST(:key AS text), CAST(:args AS jsonb), NULL::timestamptz
    )::procrastinate_job_to_defer_v1])
    """
)

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

    async def defer(self, *, queue: str, task: str, key: str, args: dict[str, Any]) -> None:
        await self.session.execute(
            _DEFER, {"queue": queue, "task": task, "key": key, "args": json.dumps(args)}
        )

    async def withdraw(self, key: str) -> int:
        """Cancel the waiting work, or ask the running work to abort; how many were found."""
        return len((await self.session.execute(_WITHDRAW, {"key": key})).all())

    async def depth_by_task(self) -> dict[str, int]:
        return {task: count for task, count in await self.session.execute(_DEPTH)}

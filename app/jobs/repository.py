from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, func, or_, select, update

from app.core.repository import Repository
from app.models import Job, JobStatus

# What the list shows: no parameters, which may be large and are only shown one job at a time.
LISTED_COLUMNS = (
    Job.job_id,
    Job.status,
    Job.created_at,
    Job.job_name,
    Job.job_type,
    Job.updated_at,
    Job.user_id,
)


def _owned_by(user_id: int, statuses: Collection[JobStatus]) -> list[ColumnElement[bool]]:
    conditions = [Job.user_id == user_id]
    if statuses:
        conditions.append(Job.status.in_(statuses))
    return conditions


@cache
def _page_query(filtered: bool, after: bool) -> Select[Any]:
    """The list's statement, built once per shape, with parameters: user_id, statuses (when
    filtered), after_created_at and after_job_id (past the first page), limit."""
    owned: list[ColumnElement[bool]] = [Job.user_id == bindparam("user_id")]
    if filtered:
        owned.append(Job.status.in_(bindparam("statuses", expanding=True)))
    total = select(func.count()).select_from(Job).where(*owned).scalar_subquery()
    conditions = list(owned)
    if after:
        created_at = bindparam("after_created_at", type_=Job.created_at.type)
        conditions.append(
            or_(
                Job.created_at < created_at,
                and_(Job.created_at == created_at, Job.job_id < bindparam("after_job_id")),
            )
        )
    return (
        select(*LISTED_COLUMNS, total.label("total"))
        .where(*conditions)
        .order_by(Job.created_at.desc(), Job.job_id.desc())
        .limit(bindparam("limit"))
    )


_COUNT_BY_STATUS = (
    select(Job.status, func.count()).where(Job.user_id == bindparam("user_id")).group_by(Job.status)
)


class JobRepository(Repository[Job]):
    model = Job

    async def page_for_user(
        self,
        user_id: int,
        *,
        statuses: Collection[JobStatus],
        limit: int,
        after: tuple[datetime, int] | None = None,
    ) -> tuple[Sequence[Row[tuple[object, ...]]], int | None]:
        """The user's jobs newest first, starting below the keyset position `after`, and how
        many jobs match the filter on all pages, in one round trip.

        The total rides along on every row; with no rows it is None (unknown).
        """
        params: dict[str, Any] = {"user_id": user_id, "limit": limit}
        if statuses:
            params["statuses"] = list(statuses)
        if after is not None:
            params["after_created_at"], params["after_job_id"] = after
        query = _page_query(bool(statuses), after is not None)
        rows = (await self.session.execute(query, params)).all()
        return rows, (rows[0].total if rows else None)

    async def count_for_user(self, user_id: int, *, statuses: Collection[JobStatus]) -> int:
        query = select(func.count()).select_from(Job).where(*_owned_by(user_id, statuses))
        return await self.session.scalar(query) or 0

    async def count_by_status(self, user_id: int) -> dict[JobStatus, int]:
        rows = await self.session.execute(_COUNT_BY_STATUS, {"user_id": user_id})
        return {status: count for status, count in rows}

    async def get_for_user(self, job_id: int, user_id: int) -> Job | None:
        query = select(Job).where(Job.job_id == job_id, Job.user_id == user_id)
        return await self.session.scalar(query)

    async def set_status_if(
        self, job_id: int, *, expected: JobStatus, new: JobStatus
    ) -> Job | None:
        """Move the job to `new` only if it is still `expected`; None if someone moved it first."""
        query = (
            update(Job)
            .where(Job.job_id == job_id, Job.status == expected)
            .values(status=new)
            .returning(Job)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(query)

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Label,
    Row,
    Select,
    and_,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.types import String, Text

from app.core.repository import Repository
from app.jobs.engine import NewJobWork
from app.jobs.marks import Counter, Mark, Snapshot
from app.jobs.schemas import JobChange, JobRead
from app.models import Job, JobStatus
from app.users.changes import note_user_changed

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


# What the events stream sends of a job: the list's columns and the progress.
CHANGE_COLUMNS = (*LISTED_COLUMNS, Job.progress, Job.progress_message)


def _owned_by(user_id: int, statuses: Collection[JobStatus]) -> list[ColumnElement[bool]]:
    conditions = [Job.user_id == user_id]
    if statuses:
        conditions.append(Job.status.in_(statuses))
    return conditions


def _json_timestamp(column: str) -> str:
    # As pydantic writes an aware UTC datetime: "Z", microseconds only when there are some.
    text = f"{column} AT TIME ZONE 'UTC'"
    return (
        f"CASE WHEN date_trunc('second', {column}) = {column}"
        f""" THEN to_char({text}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
        f""" ELSE to_char({text}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    )


# One list item as JobRead serializes it, rendered by PostgreSQL: same keys, same order, no
# whitespace; to_json() escapes strings as pydantic does. tests/jobs/test_job_json.py holds it
# to JobRead's own serialization.
JOB_JSON_SQL = (
    """'{"job_id":' || jobs.job_id"""
    """ || ',"status":' || to_json(jobs.status)::text"""
    f""" || ',"created_at":"' || {_json_timestamp("jobs.created_at")}"""
    """ || '","job_name":' || to_json(jobs.job_name)::text"""
    """ || ',"job_type":' || to_json(jobs.job_type)::text"""
    f""" || ',"updated_at":"' || {_json_timestamp("jobs.updated_at")}"""
    """ || '","user_id":' || jobs.user_id || '}'"""
)
_JOB_JSON: Label[str] = literal_column(JOB_JSON_SQL, String).label("json")


@cache
def _page_query(filtered: bool, after: bool, as_json: bool) -> Select[Any]:
    """The list's statement, built once per shape, with parameters: user_id, statuses (when
    filtered), after_created_at and after_job_id (past the first page), limit. `as_json`:
    each row carries the job as JSON text instead of its columns (PostgreSQL)."""
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
    listed = (Job.created_at, Job.job_id, _JOB_JSON) if as_json else LISTED_COLUMNS
    return (
        select(*listed, total.label("total"))
        .where(*conditions)
        .order_by(Job.created_at.desc(), Job.job_id.desc())
        .limit(bindparam("limit"))
    )


_JOB_COLUMNS = tuple(column.key for column in Job.__table__.columns)


def _detached_job(row: Row[Any]) -> Job:
    """A Job from a row of all its columns, outside any session."""
    return Job(**{column: row._mapping[column] for column in _JOB_COLUMNS})


# What a submit provides; the other columns take their defaults.
_SUBMITTED = ("user_id", "job_name", "job_type", "parameters")


@cache
def _insert_query(along: Callable[[ColumnElement[int]], ColumnElement[Any]] | None) -> Any:
    """A job's insert, built once, with parameters named after the submitted columns; with
    `along`, also evaluated with the new job's id in the same statement."""
    inserted = (
        insert(Job)
        .values({name: bindparam(name) for name in _SUBMITTED})
        .returning(*Job.__table__.columns)
    )
    if along is None:
        return inserted
    new = inserted.cte("new_job")
    return select(new, along(new.c.job_id))


@cache
def _update_query(columns: tuple[str, ...], add_attempts: int) -> Any:
    """A conditional update, built once per shape: parameters target_id, expected, new_<column>
    for each column written."""
    table = Job.__table__.columns
    values: dict[str, Any] = {
        name: bindparam(f"new_{name}", type_=table[name].type) for name in columns
    }
    if add_attempts:
        values["attempts"] = Job.attempts + add_attempts
    return (
        update(Job)
        .where(Job.job_id == bindparam("target_id"), Job.status == bindparam("expected"))
        .values(values)
        .returning(*table)
    )


_COUNT_BY_STATUS = (
    select(Job.status, func.count()).where(Job.user_id == bindparam("user_id")).group_by(Job.status)
)


# The user's jobs changed since a snapshot, and the snapshot this very statement reads with: in
# autocommit (or read committed) every statement takes a snapshot of its own, and
# pg_current_snapshot() returns it. No commit can fall between the two. The columns are
# CHANGE_COLUMNS', named from them (the model's names, not input: S608 does not apply).
_CHANGED_SINCE_SNAPSHOT = text(
    f"""
    WITH reading AS (SELECT pg_current_snapshot() AS snapshot)
    SELECT reading.snapshot::text AS mark, changed.*
    FROM reading LEFT JOIN LATERAL (
        SELECT {", ".join(column.expression.name for column in CHANGE_COLUMNS)}
        FROM jobs
        WHERE user_id = :user_id
          AND changed_in >= pg_snapshot_xmin(CAST(:since AS text)::pg_snapshot)::text::bigint
          AND NOT pg_visible_in_snapshot(
              changed_in::text::xid8, CAST(:since AS text)::pg_snapshot
          )
          -- A stamp past the present came with a restored dump (its transaction ids are
          -- another server's): not a change since any mark, until written again here.
          AND changed_in < pg_snapshot_xmax(reading.snapshot)::text::bigint
        ORDER BY changed_in
        LIMIT :limit
    ) AS changed ON true
    """  # noqa: S608
).columns(literal_column("mark", Text), *CHANGE_COLUMNS)
_CURRENT_SNAPSHOT = text("SELECT pg_current_snapshot()::text")
_CURRENT_COUNTER = text("SELECT last FROM job_change_counter")


class Changes(NamedTuple):
    jobs: list[JobChange]  # oldest change first
    mark: Mark  # the present: where the next read starts
    more: bool  # more than the limit changed; `jobs` holds only some


class JsonJob(NamedTuple):
    created_at: datetime
    job_id: int
    json: str  # as JobRead serializes it


def _render(row: Row[Any]) -> str:
    return JobRead.model_validate(row._mapping).model_dump_json()


class JobRepository(Repository[Job]):
    model = Job

    async def page_for_user(
        self,
        user_id: int,
        *,
        statuses: Collection[JobStatus],
        limit: int,
        after: tuple[datetime, int] | None = None,
    ) -> tuple[list[JsonJob], int | None]:
        """The user's jobs newest first, starting below the keyset position `after`, each as
        JobRead's JSON, and how many jobs match the filter on all pages, in one round trip.

        The total rides along on every row; with no rows it is None (unknown). PostgreSQL
        renders the JSON itself; elsewhere JobRead does.
        """
        params: dict[str, Any] = {"user_id": user_id, "limit": limit}
        if statuses:
            params["statuses"] = list(statuses)
        if after is not None:
            params["after_created_at"], params["after_job_id"] = after
        as_json = self.session.get_bind().dialect.name == "postgresql"
        query = _page_query(bool(statuses), after is not None, as_json)
        # As Core on the session's connection: plain rows, none of the ORM's per-statement work.
        connection = await self.session.connection()
        rows = (await connection.execute(query, params)).all()
        jobs = [
            JsonJob(row.created_at, row.job_id, row.json if as_json else _render(row))
            for row in rows
        ]
        return jobs, (rows[0].total if rows else None)

    async def count_for_user(self, user_id: int, *, statuses: Collection[JobStatus]) -> int:
        query = select(func.count()).select_from(Job).where(*_owned_by(user_id, statuses))
        return await self.session.scalar(query) or 0

    async def count_by_status(self, user_id: int) -> dict[JobStatus, int]:
        connection = await self.session.connection()
        rows = await connection.execute(_COUNT_BY_STATUS, {"user_id": user_id})
        return {status: count for status, count in rows}

    @property
    def mark_type(self) -> type[Snapshot] | type[Counter]:
        """The kind of mark this database's changes are read since."""
        return Snapshot if self.session.get_bind().dialect.name == "postgresql" else Counter

    async def changes_since(self, user_id: int, since: Mark | None, limit: int) -> Changes:
        """The user's jobs changed since `since` (at most `limit`), and the mark of the present;
        with no mark, only the present. On SQLite both are read in the session's transaction,
        which must be open for nothing else."""
        connection = await self.session.connection()
        if since is None:
            if self.mark_type is Snapshot:
                present: Mark = Snapshot.from_text(await connection.scalar(_CURRENT_SNAPSHOT))
            else:
                present = Counter(await connection.scalar(_CURRENT_COUNTER))
            return Changes([], present, more=False)
        mark: Mark
        if isinstance(since, Snapshot):
            params = {"user_id": user_id, "since": since.text(), "limit": limit + 1}
            rows = (await connection.execute(_CHANGED_SINCE_SNAPSHOT, params)).all()
            mark = Snapshot.from_text(rows[0].mark)
            changed = [row for row in rows if row.job_id is not None]
        else:
            mark = Counter(await connection.scalar(_CURRENT_COUNTER))
            query = (
                select(*CHANGE_COLUMNS)
                .where(Job.user_id == user_id, Job.changed_in > since.last)
                .order_by(Job.changed_in)
                .limit(limit + 1)
            )
            changed = list((await connection.execute(query)).all())
        jobs = [JobChange.model_validate(row._mapping) for row in changed[:limit]]
        return Changes(jobs, mark, more=len(changed) > limit)

    async def get_for_user(self, job_id: int, user_id: int) -> Job | None:
        query = select(Job).where(Job.job_id == job_id, Job.user_id == user_id)
        return await self.session.scalar(query)

    async def insert(self, values: Mapping[str, Any], along: NewJobWork | None = None) -> Job:
        """A new job, as inserted (not attached to the session). `along` is written by the same
        statement, with the new job's id: what must exist with the job or not at all (its
        queued work). As Core on the session's connection: no unit-of-work flush."""
        statement = _insert_query(along.sql if along else None)
        params = {**values, **along.params} if along else values
        connection = await self.session.connection()
        row = (await connection.execute(statement, params)).one()
        note_user_changed(self.session, row.user_id)
        return _detached_job(row)

    async def update_if(
        self,
        job_id: int,
        *,
        expected: JobStatus,
        values: Mapping[str, Any],
        add_attempts: int = 0,
    ) -> Job | None:
        """Write `values` (and add `add_attempts` to the attempts, in SQL: two writers both
        count) only if the job is still `expected`; None if someone moved it first. The job as
        written (not attached to the session), as Core on the session's connection: none of
        the ORM's bulk-update bookkeeping."""
        query = _update_query(tuple(sorted(values)), add_attempts)
        params = {"target_id": job_id, "expected": expected}
        params.update((f"new_{name}", value) for name, value in values.items())
        connection = await self.session.connection()
        row = (await connection.execute(query, params)).first()
        if row is None:
            return None
        note_user_changed(self.session, row.user_id)
        return _detached_job(row)

    async def unfinished(self) -> list[tuple[int, str]]:
        """(job_id, job_type) of every job waiting or running, oldest first."""
        query = (
            select(Job.job_id, Job.job_type)
            .where(Job.status.in_([JobStatus.PENDING, JobStatus.RUNNING]))
            .order_by(Job.job_id)
        )
        return [(job_id, job_type) for job_id, job_type in await self.session.execute(query)]

    async def page_all(
        self,
        *,
        statuses: Collection[JobStatus],
        user_id: int | None,
        limit: int,
        after: tuple[datetime, int] | None,
    ) -> Sequence[Job]:
        """Everyone's jobs newest first (an admin's list), below the keyset position `after`."""
        query = select(Job)
        if statuses:
            query = query.where(Job.status.in_(statuses))
        if user_id is not None:
            query = query.where(Job.user_id == user_id)
        if after is not None:
            created_at, job_id = after
            query = query.where(
                or_(
                    Job.created_at < created_at,
                    and_(Job.created_at == created_at, Job.job_id < job_id),
                )
            )
        query = query.order_by(Job.created_at.desc(), Job.job_id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()

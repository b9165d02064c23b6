import json
from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, func, or_, select, update

from app.core.db import Reader
from app.core.repository import Repository
from app.core.security import TokenClaims
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

    async def update_if(
        self, job_id: int, *, expected: JobStatus, values: dict[str, Any]
    ) -> Job | None:
        """Write `values` only if the job is still `expected`; None if someone moved it first."""
        query = (
            update(Job)
            .where(Job.job_id == job_id, Job.status == expected)
            .values(**values)
            .returning(Job)
            .execution_options(populate_existing=True)
        )
        return await self.session.scalar(query)

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


# ---------------------------------------------------------------------------------------------
# The dashboard's poll on PostgreSQL, as asyncpg runs it (see app/jobs/fast_path.py).
# ---------------------------------------------------------------------------------------------

# The user a token names, if the token still holds: the same rules as AuthService.user_for_token.
# $1 user_id, $2 the token's version, $3 its jti.
_TOKEN_USER = """
    SELECT u.jobs_version FROM users AS u
    WHERE u.user_id = $1 AND u.is_active AND u.token_version = $2
      AND NOT EXISTS (SELECT FROM revoked_tokens AS r WHERE r.jti = $3)
"""


def _json_timestamp(column: str) -> str:
    # As pydantic writes an aware UTC datetime: "Z", microseconds only when there are some.
    text = f"{column} AT TIME ZONE 'UTC'"
    return (
        f"CASE WHEN date_trunc('second', {column}) = {column}"
        f""" THEN to_char({text}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
        f""" ELSE to_char({text}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    )


# One list item as JobRead serializes it: same keys, same order, no whitespace. to_json()
# escapes strings as pydantic does.
_JOB_JSON = (
    """'{"job_id":' || j.job_id"""
    """ || ',"status":' || to_json(j.status)::text"""
    f""" || ',"created_at":"' || {_json_timestamp("j.created_at")}"""
    """ || '","job_name":' || to_json(j.job_name)::text"""
    """ || ',"job_type":' || to_json(j.job_type)::text"""
    f""" || ',"updated_at":"' || {_json_timestamp("j.updated_at")}"""
    """ || '","user_id":' || j.user_id || '}'"""
)


@cache
def _feed_page_sql(filtered: bool, after: bool) -> str:
    """The token check, the total and the page in one statement: no row when the token does
    not hold. $1-$3 as _TOKEN_USER, $4 how many rows, then the statuses (when filtered),
    then the keyset position (past the first page)."""
    conditions = ["j.user_id = $1"]
    number = 4
    if filtered:
        number += 1
        conditions.append(f"j.status = ANY(${number}::text[])")
    matching = " AND ".join(conditions)
    if after:
        conditions.append(f"(j.created_at, j.job_id) < (${number + 1}::timestamptz, ${number + 2})")
    # Assembled from the constants above only; every value is a $n parameter.
    return f"""
        WITH me AS ({_TOKEN_USER})
        SELECT me.jobs_version,
               (SELECT count(*) FROM jobs AS j WHERE {matching}) AS total,
               ARRAY(SELECT {_JOB_JSON} FROM jobs AS j
                     WHERE {" AND ".join(conditions)}
                     ORDER BY j.created_at DESC, j.job_id DESC
                     LIMIT $4) AS jobs
        FROM me
    """  # noqa: S608


# text and text[] only: asyncpg decodes them without first asking the server about the type.
_FEED_COUNTS_SQL = f"""
    WITH me AS ({_TOKEN_USER})
    SELECT me.jobs_version,
           (SELECT json_object_agg(g.status, g.n)
            FROM (SELECT j.status, count(*) AS n FROM jobs AS j WHERE j.user_id = $1
                  GROUP BY j.status) AS g)::text AS counts
    FROM me
"""  # noqa: S608  (assembled from constants; values are $n parameters)


def _token_args(claims: TokenClaims) -> tuple[int, int, str]:
    """$1-$3 of every statement below: what _TOKEN_USER checks."""
    return claims.user_id, claims.token_version, claims.jti


class JobFeedRepository:
    """The poll's statements, on asyncpg directly: through the ORM the same page costs about
    five times the CPU, and the rows arrive already rendered as JSON text."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    async def jobs_version(self, claims: TokenClaims) -> int | None:
        """The user's jobs_version, or None when the token no longer holds."""
        row = await self.reader.fetchrow(_TOKEN_USER, *_token_args(claims))
        return None if row is None else int(row[0])

    async def page(
        self,
        claims: TokenClaims,
        *,
        statuses: Collection[JobStatus],
        limit: int,
        after: tuple[datetime, int] | None,
    ) -> tuple[int, int, list[str]] | None:
        """(jobs_version, total, up to `limit` jobs as JSON text, newest first), or None when
        the token no longer holds."""
        args: list[object] = [*_token_args(claims), limit]
        if statuses:
            args.append([status.value for status in statuses])
        if after is not None:
            args.extend(after)
        row = await self.reader.fetchrow(_feed_page_sql(bool(statuses), after is not None), *args)
        if row is None:
            return None
        return int(row["jobs_version"]), int(row["total"]), list(row["jobs"])

    async def counts_by_status(self, claims: TokenClaims) -> tuple[int, dict[str, int]] | None:
        """(jobs_version, how many jobs in each status the user has any of), or None when the
        token no longer holds."""
        row = await self.reader.fetchrow(_FEED_COUNTS_SQL, *_token_args(claims))
        if row is None:
            return None
        counts: dict[str, int] = json.loads(row["counts"]) if row["counts"] else {}
        return int(row["jobs_version"]), counts

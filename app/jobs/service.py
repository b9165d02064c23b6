"""The rules for jobs: ownership, the status lifecycle, pagination."""

import base64
import binascii
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.caller import Caller
from app.core.errors import Conflict, InvalidInput, NotFound
from app.jobs.metrics import count_submitted_job
from app.jobs.repository import JobRepository
from app.models import Job, JobStatus
from app.users.repository import UserRepository

# The lifecycle: pending -> running -> completed | failed; pending or running -> cancelled.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}),
}


class JobNotFound(NotFound):
    detail = "Job not found"


class InvalidTransition(Conflict):
    def __init__(self, current: JobStatus, requested: JobStatus) -> None:
        super().__init__(f"Cannot change a {current.value} job to {requested.value}")


class InvalidCursor(InvalidInput):
    detail = "Invalid cursor"


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: Sequence[str]  # each as JobRead's JSON
    total: int
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class JobQuery:
    """A validated list request: the filter, the page size and where the page starts."""

    statuses: tuple[JobStatus, ...]
    limit: int
    cursor: str | None
    after: tuple[datetime, int] | None


@lru_cache(maxsize=4096)  # every poll of an unchanged list asks for the same one
def jobs_etag(user_id: int, jobs_version: int, *request: object) -> str:
    """Changes whenever the user's jobs change (any submit or status move bumps
    `jobs_version`) or the request asks for something else; needs no query on jobs."""
    key = repr((user_id, jobs_version, request)).encode()
    return '"' + hashlib.blake2b(key, digest_size=16).hexdigest() + '"'


def list_etag(user_id: int, jobs_version: int, query: "JobQuery") -> str:
    return jobs_etag(user_id, jobs_version, "list", query.statuses, query.limit, query.cursor)


def stats_etag(user_id: int, jobs_version: int) -> str:
    return jobs_etag(user_id, jobs_version, "stats")


def encode_cursor(created_at: datetime, job_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at_text, job_id = json.loads(raw)
        created_at = datetime.fromisoformat(created_at_text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise InvalidCursor from exc
    if created_at.tzinfo is None or not isinstance(job_id, int) or isinstance(job_id, bool):
        raise InvalidCursor
    try:
        created_at = created_at.astimezone(UTC)
    except OverflowError as exc:  # e.g. year 1 east of Greenwich
        raise InvalidCursor from exc
    if not 0 < job_id < 2**63:
        raise InvalidCursor
    return created_at, job_id


def totals_by_status(counts: Mapping[JobStatus, int] | Mapping[str, int]) -> dict[str, int]:
    """Every status, zero where the user has none, and the total."""
    by_status = {status.value: counts.get(status, 0) for status in JobStatus}
    return {"total": sum(by_status.values()), **by_status}


class JobService:
    def __init__(self, session: AsyncSession) -> None:
        self.jobs = JobRepository(session)
        self.users = UserRepository(session)

    @staticmethod
    def query(
        statuses: Collection[JobStatus] = (), limit: int = 100, cursor: str | None = None
    ) -> JobQuery:
        # Sorted and deduplicated, so equal filters share one ETag.
        ordered = tuple(sorted(set(statuses)))
        after = decode_cursor(cursor) if cursor else None
        return JobQuery(statuses=ordered, limit=limit, cursor=cursor, after=after)

    @staticmethod
    def list_etag(user: Caller, query: JobQuery) -> str:
        return list_etag(user.user_id, user.jobs_version, query)

    @staticmethod
    def stats_etag(user: Caller) -> str:
        return stats_etag(user.user_id, user.jobs_version)

    async def list_jobs(self, user: Caller, query: JobQuery) -> JobPage:
        # One row past the page tells whether another page follows.
        rows, total = await self.jobs.page_for_user(
            user.user_id, statuses=query.statuses, limit=query.limit + 1, after=query.after
        )
        if total is None:
            # An empty page: past the end, or nothing matches.
            total = (
                await self.jobs.count_for_user(user.user_id, statuses=query.statuses)
                if query.after
                else 0
            )
        page, more = rows[: query.limit], len(rows) > query.limit
        return JobPage(
            jobs=[row.json for row in page],
            total=total,
            next_cursor=encode_cursor(page[-1].created_at, page[-1].job_id) if more else None,
        )

    async def stats(self, user: Caller) -> dict[str, int]:
        return totals_by_status(await self.jobs.count_by_status(user.user_id))

    async def submit(
        self, user: Caller, *, job_name: str, job_type: str, parameters: dict[str, Any] | None
    ) -> Job:
        job = Job(user_id=user.user_id, job_name=job_name, job_type=job_type, parameters=parameters)
        await self.jobs.add(job)
        await self.users.bump_jobs_version(user.user_id)
        count_submitted_job(job_type)
        return job

    async def get_own(self, user: Caller, job_id: int) -> Job:
        # Someone else's job is "not found": a 403 would confirm that it exists.
        job = await self.jobs.get_for_user(job_id, user.user_id)
        if job is None:
            raise JobNotFound
        return job

    async def cancel(self, user: Caller, job_id: int) -> Job:
        job = await self.get_own(user, job_id)
        return await self._move(job, JobStatus.CANCELLED)

    async def change_status(self, job_id: int, new_status: JobStatus) -> Job:
        job = await self.jobs.get(job_id)
        if job is None:
            raise JobNotFound
        return await self._move(job, new_status)

    async def _move(self, job: Job, new_status: JobStatus) -> Job:
        current = job.status
        if new_status not in TRANSITIONS.get(current, frozenset()):
            raise InvalidTransition(current, new_status)
        moved = await self.jobs.set_status_if(job.job_id, expected=current, new=new_status)
        if moved is None:
            # Another request changed the job between our read and our write.
            raise Conflict("The job was changed by another request; reload it and try again")
        await self.users.bump_jobs_version(moved.user_id)
        return moved

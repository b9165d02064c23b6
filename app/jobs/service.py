"""The rules for jobs: ownership, the status lifecycle, pagination."""

import hashlib
import math
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.caller import Caller
from app.auth.revalidation_cache import RevalidationCache
from app.core.errors import Conflict, NotFound
from app.core.http_cache import etag_matches
from app.jobs.cursors import decode_cursor, encode_cursor
from app.jobs.engine import WorkQueue
from app.jobs.metrics import count_submitted_job
from app.jobs.repository import JobRepository
from app.jobs.schemas import JobStats, JobStatsResponse, list_response_json
from app.models import Job, JobStatus
from app.models.base import utc_now
from app.models.job import PROGRESS_MESSAGE_LENGTH

# The lifecycle: pending -> running -> completed | failed; pending or running -> cancelled;
# failed -> pending when retried (queued again).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.FAILED: frozenset({JobStatus.PENDING}),
}
# An error or progress message is cut to this length.
MAX_ERROR_LENGTH = 2000


class JobNotFound(NotFound):
    detail = "Job not found"


class InvalidTransition(Conflict):
    def __init__(self, current: JobStatus, requested: JobStatus) -> None:
        super().__init__(f"Cannot change a {current.value} job to {requested.value}")


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

    @property
    def key(self) -> tuple[object, ...]:
        """What tells this request's answer from another's."""
        return ("list", self.statuses, self.limit, self.cursor)


def content_etag(request: bytes, body: bytes) -> str:
    """The ETag of an answer: its bytes and the request it answers (two requests whose
    answers happen to be equal still get different ETags)."""
    digest = hashlib.blake2b(request, digest_size=16)
    digest.update(body)
    return '"' + digest.hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class Conditional:
    """An answer to a conditional GET: `body` is None when the client's copy is current."""

    etag: str
    body: bytes | None


def totals_by_status(counts: Mapping[JobStatus, int] | Mapping[str, int]) -> dict[str, int]:
    """Every status, zero where the user has none, and the total."""
    by_status = {status.value: counts.get(status, 0) for status in JobStatus}
    return {"total": sum(by_status.values()), **by_status}


async def user_totals(jobs: JobRepository, user: Caller) -> dict[str, int]:
    """How many of the user's jobs are in each status, and in all."""
    return totals_by_status(await jobs.count_by_status(user.user_id))


STATS_KEY = ("stats",)


class JobService:
    def __init__(
        self, session: AsyncSession, queue: WorkQueue, answers: RevalidationCache | None = None
    ) -> None:
        self.session = session
        self.jobs = JobRepository(session)
        self.queue = queue
        # Remembered ETags (app/auth/revalidation_cache.py); None where nothing is remembered.
        self.answers = answers

    @staticmethod
    def query(
        statuses: Collection[JobStatus] = (), limit: int = 100, cursor: str | None = None
    ) -> JobQuery:
        # Sorted and deduplicated, so equal filters share one ETag.
        ordered = tuple(sorted(set(statuses)))
        after = decode_cursor(cursor) if cursor else None
        return JobQuery(statuses=ordered, limit=limit, cursor=cursor, after=after)

    async def list_if_changed(
        self, user: Caller, query: JobQuery, if_none_match: str | None
    ) -> Conditional:
        """The page as JobListResponse's JSON, unless the client's copy is current."""

        async def render() -> bytes:
            page = await self.list_jobs(user, query)
            return list_response_json(page.jobs, page.total, page.next_cursor)

        return await self._if_changed(user, query.key, if_none_match, render)

    async def stats_if_changed(self, user: Caller, if_none_match: str | None) -> Conditional:
        """The totals as JobStatsResponse's JSON, unless the client's copy is current."""

        async def render() -> bytes:
            stats = JobStatsResponse(stats=JobStats(**await self.stats(user)))
            return stats.model_dump_json().encode()

        return await self._if_changed(user, STATS_KEY, if_none_match, render)

    async def _if_changed(
        self,
        user: Caller,
        request: object,
        if_none_match: str | None,
        render: Callable[[], Awaitable[bytes]],
    ) -> Conditional:
        """A revalidation whose ETag is remembered as current costs no query; otherwise the
        answer is read and its ETag compared (and remembered, unless the user's jobs changed
        while it was read)."""
        # Whose answer it is counts too: another user's equal list is not this one's. Kept as
        # a short digest: a cursor may be long, and memory holds many of them.
        key = hashlib.blake2b(repr((user.user_id, request)).encode(), digest_size=16).digest()
        if self.answers is None:
            body = await render()
            etag = content_etag(key, body)
        else:
            remembered = self.answers.remembered_answer(user.user_id, key)
            if remembered is not None and etag_matches(if_none_match, remembered):
                return Conditional(remembered, None)
            mark = self.answers.mark_answer(user.user_id)
            body = await render()
            etag = content_etag(key, body)
            self.answers.remember_answer(user.user_id, key, etag, mark)
        return Conditional(etag, None if etag_matches(if_none_match, etag) else body)

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
        return await user_totals(self.jobs, user)

    async def submit(
        self, user: Caller, *, job_name: str, job_type: str, parameters: dict[str, Any] | None
    ) -> Job:
        """`job_type` and `parameters` were validated against the registry (JobCreate)."""
        values = {
            "user_id": user.user_id,
            "job_name": job_name,
            "job_type": job_type,
            "parameters": parameters,
        }
        # The job and its work are written together or not at all: by one statement where the
        # queue is in the same database, else within this transaction.
        work = self.queue.new_job_work(job_type)
        job = await self.jobs.insert(values, work)
        if work is None:
            await self.queue.enqueue(self.session, job.job_id, job_type)
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
        try:
            return await self._move_by_hand(job, JobStatus.CANCELLED)
        except _Raced:
            # A worker started it meanwhile: a running job may be cancelled too.
            job = await self.get_own(user, job_id)
            return await self._move_by_hand(job, JobStatus.CANCELLED)

    async def change_status(self, job_id: int, new_status: JobStatus) -> Job:
        """An admin's move (see _move_by_hand)."""
        job = await self.jobs.get(job_id)
        if job is None:
            raise JobNotFound
        return await self._move_by_hand(job, new_status)

    async def retry(self, job_id: int) -> Job:
        return await self.change_status(job_id, JobStatus.PENDING)

    async def _move_by_hand(self, job: Job, new_status: JobStatus) -> Job:
        """A person's move, kept consistent with the engine in the same transaction: a job
        moved to pending (a retry) gets fresh queued work; a job moved anywhere else loses its
        waiting work, and its running work is aborted. So a job an admin marks running has no
        worker behind it: it stays running until moved on by hand."""
        now = utc_now()
        values: dict[str, Any]
        if new_status is JobStatus.PENDING:
            values = {
                "attempts": 0,
                "progress": 0,
                "progress_message": None,
                "result": None,
                "error": None,
                "started_at": None,
                "finished_at": None,
            }
        elif new_status is JobStatus.RUNNING:
            values = {"started_at": now}
        else:
            values = {"finished_at": now}
            if new_status is JobStatus.FAILED:
                values["error"] = "Marked failed by an administrator"
        moved = await self._move(job.job_id, job.status, new_status, **values)
        if moved is None:
            raise _Raced
        if new_status is JobStatus.PENDING:
            await self.queue.enqueue(self.session, moved.job_id, moved.job_type)
        else:
            await self.queue.withdraw(self.session, moved.job_id)
        return moved

    async def _move(
        self,
        job_id: int,
        current: JobStatus,
        new_status: JobStatus,
        *,
        add_attempts: int = 0,
        **values: Any,
    ) -> Job | None:
        """The one place a status changes: allowed by TRANSITIONS, conditional on the job
        still being `current` (None if another writer moved it first). It locks the job's row
        alone: changes to different jobs of one user never wait for each other."""
        if new_status not in TRANSITIONS.get(current, frozenset()):
            raise InvalidTransition(current, new_status)
        return await self.jobs.update_if(
            job_id,
            expected=current,
            values={"status": new_status, **values},
            add_attempts=add_attempts,
        )

    # --- the worker's side (app/jobs/runner.py): each call commits by itself --------------

    async def start_attempt(self, job_id: int, max_attempts: int) -> Job | None:
        """The job, moved to running with its attempt counted; None when it is not to run
        (cancelled, finished or gone meanwhile, or out of attempts: then failed here)."""
        # The usual case first, in one statement: a pending job starts.
        started = await self._move(
            job_id,
            JobStatus.PENDING,
            JobStatus.RUNNING,
            add_attempts=1,
            started_at=utc_now(),
            progress=0,
            progress_message=None,
            error=None,
        )
        if started is not None:
            return started
        job = await self.jobs.get(job_id)
        if job is None or job.status is not JobStatus.RUNNING:
            return None
        # Running already: the worker of the previous attempt stopped without a word.
        if job.attempts >= max_attempts:
            await self.fail(
                job_id,
                f"The worker running attempt {job.attempts} of {max_attempts} stopped "
                "responding; no attempts left",
            )
            return None
        # Counted in SQL: two deliveries of the same work both count.
        return await self._update_running(job_id, add_attempts=1)

    async def report_progress(self, job_id: int, percent: float, message: str | None) -> bool:
        """False when the job is no longer running (the handler should stop)."""
        progress = min(max(round(percent), 0), 100) if math.isfinite(percent) else 0
        text = message[:PROGRESS_MESSAGE_LENGTH] if message else None
        return (
            await self._update_running(job_id, progress=progress, progress_message=text) is not None
        )

    async def note_error(self, job_id: int, error: str) -> None:
        """A failed attempt that will be retried: the job stays running, its error shown."""
        await self._update_running(job_id, error=error[:MAX_ERROR_LENGTH])

    async def give_back_attempt(self, job_id: int) -> None:
        """The worker stopped before the attempt could finish: it does not count."""
        job = await self.jobs.get(job_id)
        if job is not None and job.status is JobStatus.RUNNING and job.attempts > 0:
            await self._update_running(job_id, add_attempts=-1)

    async def complete(self, job_id: int, result: Any) -> bool:
        """Recorded once: False if the job was no longer running (cancelled meanwhile)."""
        moved = await self._move(
            job_id,
            JobStatus.RUNNING,
            JobStatus.COMPLETED,
            result=result,
            finished_at=utc_now(),
            progress=100,
            error=None,
        )
        return moved is not None

    async def fail(self, job_id: int, error: str) -> bool:
        """Recorded once: False if the job was no longer running."""
        moved = await self._move(
            job_id,
            JobStatus.RUNNING,
            JobStatus.FAILED,
            error=error[:MAX_ERROR_LENGTH],
            finished_at=utc_now(),
        )
        return moved is not None

    async def _update_running(
        self, job_id: int, *, add_attempts: int = 0, **values: Any
    ) -> Job | None:
        """A running job's fields, not its status (which only _move changes)."""
        return await self.jobs.update_if(
            job_id, expected=JobStatus.RUNNING, values=values, add_attempts=add_attempts
        )

    # --- admins --------------------------------------------------------------------------

    async def list_all(
        self,
        statuses: Collection[JobStatus],
        owner_id: int | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[Sequence[Job], str | None]:
        """Every user's jobs, newest first, keyset-paginated."""
        after = decode_cursor(cursor) if cursor else None
        rows = await self.jobs.page_all(
            statuses=sorted(set(statuses)), user_id=owner_id, limit=limit + 1, after=after
        )
        page, more = rows[:limit], len(rows) > limit
        next_cursor = encode_cursor(page[-1].created_at, page[-1].job_id) if more else None
        return page, next_cursor


class _Raced(Conflict):
    detail = "The job was changed by another request; reload it and try again"

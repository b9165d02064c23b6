"""The rules of a user's events stream (app/jobs/events.py): what each read of it sends."""

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.caller import Caller
from app.jobs.marks import Mark, event_id, is_from_the_future, parse_event_id
from app.jobs.repository import JobRepository
from app.jobs.schemas import JobStats
from app.jobs.service import user_totals

# Changed jobs one read of an events stream sends at most; past that the client is told to
# reload instead (a resync), as a page of the list holds as many.
MAX_CHANGES_PER_BATCH = 100


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One event of a user's stream (app/jobs/events.py): `job` (a job as JobChange shows it),
    `stats` (the totals, as JobStats) or `resync` (reload everything); `data` is JSON; `id`
    the mark a reconnection replays from."""

    name: Literal["job", "stats", "resync"]
    data: str
    id: str


@dataclass(frozen=True, slots=True)
class EventBatch:
    """What one read of a stream sends, and where the next read starts."""

    events: list[JobEvent]
    mark: Mark


class JobEventService:
    """Built per read, on that read's session: a stream holds no session between reads."""

    def __init__(self, session: AsyncSession) -> None:
        self.jobs = JobRepository(session)

    async def opening_events(self, user: Caller, last_event_id: str | None) -> EventBatch:
        """A stream's first events: the totals; after a reconnection (`last_event_id`), the
        jobs changed since first. An id that is not one of ours for this database is answered
        with a resync."""
        if not last_event_id:
            current = await self.jobs.changes_since(user.user_id, None, MAX_CHANGES_PER_BATCH)
            return EventBatch([await self._stats_event(user, current.mark)], current.mark)
        since = parse_event_id(last_event_id, self.jobs.mark_type)
        if since is None:
            return await self._resync(user, None)
        return await self.events_since(user, since, opening=True)

    async def events_since(self, user: Caller, since: Mark, *, opening: bool = False) -> EventBatch:
        """The user's jobs changed since `since`, each as a `job` event carrying `since` as its
        id, then the totals carrying the new mark: a client cut off mid-batch replays all of
        it, and a job sent twice is only its current state again. Nothing when nothing
        changed; a resync when too much did or `since` lies past the present."""
        changes = await self.jobs.changes_since(user.user_id, since, MAX_CHANGES_PER_BATCH)
        if changes.more or is_from_the_future(since, changes.mark):
            return await self._resync(user, changes.mark)
        if not changes.jobs and not opening:
            return EventBatch([], changes.mark)
        replayed_from = event_id(since)
        events = [JobEvent("job", job.model_dump_json(), replayed_from) for job in changes.jobs]
        # Read after the mark: the totals are never older than what the events said.
        events.append(await self._stats_event(user, changes.mark))
        return EventBatch(events, changes.mark)

    async def _resync(self, user: Caller, current: Mark | None) -> EventBatch:
        if current is None:
            current = (await self.jobs.changes_since(user.user_id, None, 0)).mark
        resync = JobEvent("resync", "{}", event_id(current))
        return EventBatch([resync, await self._stats_event(user, current)], current)

    async def _stats_event(self, user: Caller, mark: Mark) -> JobEvent:
        stats = JobStats(**await user_totals(self.jobs, user))
        return JobEvent("stats", stats.model_dump_json(), event_id(mark))

"""Job changes pushed to their owners: each process's open event streams and what wakes them.

`GET /api/users/jobs/events` (app/jobs/router.py) is one JobEventStream. It waits on its
Subscription; on each wake it checks its token again and reads what changed since its mark
(JobEventService.events_since, app/jobs/event_service.py), in one short session: no pooled
connection is held in between.
Wakes come from:
- other processes' commits (a worker, another API process, psql): the `jobs_feed` notification
  their triggers send, through ChangeListener (app/auth/revalidation_cache.py);
- this process's commits: the users a request's or the embedded worker's session changed
  (app/users/changes.py), when that session ends;
- while notifications may be missed (SQLite, PgBouncer, the listener not connected): the clock,
  every POLL_SECONDS.
Wakes coalesce: a stream woken while it reads reads once more, not once per wake.

A stream ends when its token no longer holds (logout, password change, deactivation: these
notify `jobs_feed` too), when the token expires, and when the server is stopping
(app/core/shutdown.py), so it never holds up a graceful stop.
"""

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import AuthService
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import NotAuthenticated, TooManyRequests, is_database_unavailable
from app.core.security import decode_access_token
from app.jobs.event_service import EventBatch, JobEvent, JobEventService
from app.jobs.marks import Mark
from app.users.changes import changed_users

logger = logging.getLogger(__name__)

# While notifications may be missed, a stream reads at least this often.
POLL_SECONDS = 1.0
# When a refused stream may try again.
RETRY_STREAM_AFTER_SECONDS = 30


class TooManyStreams(TooManyRequests):
    default_headers: ClassVar = {"Retry-After": str(RETRY_STREAM_AFTER_SECONDS)}

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Too many open event streams: at most {limit} per user; close one (another tab?) "
            "and try again"
        )


class Subscription:
    """One stream's place in the hub: woken when its user's jobs may have changed."""

    __slots__ = ("_woken", "user_id")

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self._woken = asyncio.Event()

    def wake(self) -> None:
        self._woken.set()

    async def woken(self) -> None:
        """Until woken (the caller bounds the wait)."""
        await self._woken.wait()
        self._woken.clear()


class EventHub:
    """This process's open streams by user, at most `streams_per_user` each. Used from the
    event loop only; a ChangeListener subscriber."""

    def __init__(self, streams_per_user: int) -> None:
        self._streams_per_user = streams_per_user
        self._by_user: dict[int, set[Subscription]] = {}
        self._live = False  # notifications arrive (ChangeListener proved it)
        self._failing = False  # reads fail: warned once, not once per stream
        self.closing = False

    @property
    def open_streams(self) -> int:
        return sum(len(streams) for streams in self._by_user.values())

    @property
    def poll_seconds(self) -> float | None:
        """How long a stream may wait without reading: no limit while notifications arrive."""
        return None if self._live else POLL_SECONDS

    @contextlib.contextmanager
    def subscribe(self, user_id: int) -> Iterator[Subscription]:
        streams = self._by_user.setdefault(user_id, set())
        if len(streams) >= self._streams_per_user:
            raise TooManyStreams(self._streams_per_user)
        subscription = Subscription(user_id)
        streams.add(subscription)
        try:
            yield subscription
        finally:
            streams.discard(subscription)
            if not streams:
                del self._by_user[user_id]

    def users_changed(self, user_ids: Iterable[int]) -> None:
        for user_id in user_ids:
            for subscription in self._by_user.get(user_id, ()):
                subscription.wake()

    def all_users_changed(self) -> None:
        for streams in self._by_user.values():
            for subscription in streams:
                subscription.wake()

    def wake_changed_users(self, session: AsyncSession) -> None:
        """When a session of this process ends (Database.after_session): the users it changed."""
        if changed := changed_users(session):
            self.users_changed(changed)

    def go_live(self) -> None:
        # Everyone reads once more: what committed before the listener took hold is read now.
        self._live = True
        self.all_users_changed()

    def go_dark(self) -> None:
        if self._live:
            self._live = False
            # Streams waiting without a limit start polling.
            self.all_users_changed()

    def read_failed(self, exc: BaseException) -> None:
        if not self._failing:
            logger.warning("Event streams cannot read the database (%r); retrying", exc)
        self._failing = True

    def read_succeeded(self) -> None:
        self._failing = False

    def close(self) -> None:
        """The server is stopping: every stream ends, and new ones end at once."""
        self.closing = True
        self.all_users_changed()


class JobEventStream:
    """One open stream: what it sends, from its opening until it ends (see the module's doc)."""

    def __init__(
        self,
        subscription: Subscription,
        hub: EventHub,
        database: Database,
        *,
        token: str,
        settings: Settings,
        auth: Callable[[AsyncSession], AuthService],
    ) -> None:
        self._subscription = subscription
        self._hub = hub
        self._database = database
        self._token = token
        # Checked by the request's own authentication a moment ago.
        self._expires_at = decode_access_token(token, settings).expires_at
        self._auth = auth

    async def events(self, last_event_id: str | None) -> AsyncIterator[JobEvent]:
        mark: Mark | None = None
        unavailable = False
        while not self._hub.closing and not self._expired():
            try:
                batch = await self._read(mark, last_event_id)
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                # Read again soon, from the same mark: nothing is lost.
                self._hub.read_failed(exc)
                unavailable = True
            else:
                self._hub.read_succeeded()
                unavailable = False
                if batch is None:
                    return  # the token no longer holds
                for event in batch.events:
                    yield event
                mark = batch.mark
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._longest_wait(unavailable)):
                    await self._subscription.woken()

    async def _read(self, mark: Mark | None, last_event_id: str | None) -> EventBatch | None:
        async with self._database.read_session() as session:
            try:
                caller = await self._auth(session).caller_for_token(self._token, read_only=True)
            except NotAuthenticated:
                return None
            jobs = JobEventService(session)
            if mark is None:
                return await jobs.opening_events(caller, last_event_id)
            return await jobs.events_since(caller, mark)

    def _expired(self) -> bool:
        return datetime.now(UTC) >= self._expires_at

    def _longest_wait(self, unavailable: bool) -> float:
        poll = POLL_SECONDS if unavailable else self._hub.poll_seconds
        until_expiry = (self._expires_at - datetime.now(UTC)).total_seconds()
        return min(math.inf if poll is None else poll, max(until_expiry, 0))

"""Who a token names, remembered until the database says it changed.

A dashboard revalidates every few seconds, and every request first checks that its token still
holds: the token's user as it stands (`Caller`: active, token version) and whether the token
was logged out, one round trip. A revalidation (If-None-Match) then needs the answer's current
ETag, which is a hash of the answer itself. RevalidationCache keeps both per user (the callers
per token, the ETags per request found current) and forgets a user the moment something they
depend on changes:

- in another process (another worker, the CLI, psql): triggers on `users`, `revoked_tokens`
  and `jobs` send `NOTIFY jobs_feed, '<user_id>'` on commit (migrations 4ad51c240924 and
  b7d2e5a1c308), and ChangeListener LISTENs on a connection of its own and tells its
  subscribers (this cache, and the events streams' hub, app/jobs/events.py);
- in this process: the request's session notes each user it changed (app/users/changes.py),
  and `forget_changed_users` runs when the session ends, after the commit and before the
  response goes out, so a client never has its own write judged by stale memory.

Only requests that read (GET, HEAD) are checked against memory, and the token rule
(`check_token`) is applied to what memory holds exactly as to a database row; writes always
read the row. Between another process's commit and its notification arriving here (normally
well under a millisecond; after a silent network cut, until ChangeListener's next check fails),
a read may still be judged as before the change. While ChangeListener is not sure notifications
arrive (not yet connected, connection lost, triggers missing, PgBouncer in transaction mode),
nothing is remembered and every request asks the database.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.auth.caller import Caller
from app.core.config import Settings
from app.core.db import asyncpg_connect_kwargs
from app.core.security import TokenClaims
from app.users.changes import changed_users

logger = logging.getLogger(__name__)

# The NOTIFY channel the triggers send on.
CHANNEL = "jobs_feed"
# Their application_name, to tell them apart in pg_stat_activity.
LISTENER_NAME = "jobs-feed-listener"
PROBER_NAME = "jobs-feed-prober"
# Tokens remembered per user: one per signed-in browser or script is plenty.
MAX_TOKENS_PER_USER = 16
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
# Answers (ETags) remembered per user: one per request shape a dashboard repeats.
MAX_ANSWERS_PER_USER = 32
# The triggers that send jobs_feed (migrations 4ad51c240924, b7d2e5a1c308), and the check that
# they are there.
TRIGGERS = (
    "users_jobs_feed_update",
    "users_jobs_feed_delete",
    "users_jobs_feed_truncate",
    "revoked_tokens_jobs_feed",
    "jobs_jobs_feed",
)
_PROBE_SQL = """
    SELECT pg_notify($1, $2) AS sent,
           (SELECT count(*) FROM pg_trigger
            WHERE tgname = ANY($3::text[]) AND tgenabled <> 'D'
              AND tgrelid IN ('users'::regclass, 'revoked_tokens'::regclass,
                              'jobs'::regclass)) AS enabled
"""


class ChangeSubscriber(Protocol):
    """What ChangeListener keeps in step: told which users changed, and whether notifications
    arrive at all (while they may be missed, nothing may be taken on trust)."""

    def users_changed(self, user_ids: Iterable[int]) -> None: ...

    def all_users_changed(self) -> None: ...

    def go_live(self) -> None: ...

    def go_dark(self) -> None: ...


@dataclass(slots=True, eq=False)
class _Known:
    caller: Caller
    jtis: set[str] = field(default_factory=set)  # tokens found not logged out
    answers: dict[bytes, str] = field(default_factory=dict)  # request key -> its current ETag


class AnswerMark:
    """What remember_answer() needs to tell whether the user changed while the answer was
    read: the user's entry as it was before (a change replaces or removes it)."""

    __slots__ = ("_known",)

    def __init__(self, known: _Known | None) -> None:
        self._known = known


class RevalidationCache:
    """Each user's row for the tokens found not logged out; at most `max_users` users, the
    longest-remembered dropped first. Used from the event loop only.

    A read from the database and a change can cross: the read may start before a commit and
    its answer arrive after the change was forgotten. So a caller takes `generation()` before
    it reads, and `remember()` keeps the answer only if nothing was forgotten in between.
    """

    def __init__(self, max_users: int) -> None:
        self._max_users = max_users
        self._known: dict[int, _Known] = {}
        self._generation = 0
        self._live = False

    @property
    def live(self) -> bool:
        return self._live

    def __len__(self) -> int:
        return len(self._known)

    def lookup(self, claims: TokenClaims) -> Caller | None:
        """The token's user if this token was found not logged out, else None (ask the
        database)."""
        known = self._known.get(claims.user_id)
        if known is not None and claims.jti in known.jtis:
            return known.caller
        return None

    def generation(self) -> int:
        return self._generation

    def remember(self, claims: TokenClaims, caller: Caller, generation: int) -> None:
        """Keep what the database answered, for a token it found not logged out, for a read
        that started at `generation`."""
        if not self._live or generation != self._generation or self._max_users == 0:
            return
        known = self._known.get(claims.user_id)
        if known is None:
            if len(self._known) >= self._max_users:
                del self._known[next(iter(self._known))]
            known = self._known[claims.user_id] = _Known(caller)
        elif known.caller != caller:
            # Two reads disagree and no change has arrived yet: its notice is on the way.
            del self._known[claims.user_id]
            return
        if len(known.jtis) >= MAX_TOKENS_PER_USER:
            known.jtis.clear()
        known.jtis.add(claims.jti)

    def remembered_answer(self, user_id: int, request: bytes) -> str | None:
        """The ETag of `request`'s answer for this user, if it was found current and nothing
        of the user's changed since; else None (compute the answer)."""
        known = self._known.get(user_id)
        return None if known is None else known.answers.get(request)

    def mark_answer(self, user_id: int) -> AnswerMark:
        """Taken before reading an answer from the database."""
        return AnswerMark(self._known.get(user_id))

    def remember_answer(self, user_id: int, request: bytes, etag: str, mark: AnswerMark) -> None:
        """Keep the ETag of an answer read since `mark`, unless the user changed meanwhile
        (only users whose caller is remembered have answers remembered)."""
        known = self._known.get(user_id)
        if known is None or known is not mark._known:
            return
        if len(known.answers) >= MAX_ANSWERS_PER_USER:
            known.answers.clear()
        known.answers[request] = etag

    def forget(self, user_ids: Iterable[int]) -> None:
        self._generation += 1
        for user_id in user_ids:
            self._known.pop(user_id, None)

    def forget_changed_users(self, session: AsyncSession) -> None:
        """When a request's session ends: the users it changed (app/users/changes.py)."""
        if changed := changed_users(session):
            self.forget(changed)

    def forget_all(self) -> None:
        self._generation += 1
        self._known.clear()

    # As a ChangeSubscriber: a change notice makes the user's entry go.
    def users_changed(self, user_ids: Iterable[int]) -> None:
        self.forget(user_ids)

    def all_users_changed(self) -> None:
        self.forget_all()

    def go_live(self) -> None:
        """Notifications now arrive: from here on, answers may be remembered."""
        self.forget_all()
        self._live = True

    def go_dark(self) -> None:
        """Notifications may be missed: remember nothing until live again."""
        self._live = False
        self.forget_all()


class ChangeListener:
    """LISTENs on `jobs_feed` on a connection of its own and keeps its subscribers in step
    (RevalidationCache, the events streams' hub).

    Every `check_every` seconds a second connection commits a notification on a channel of this
    process's own and counts the enabled triggers that send `jobs_feed`; the listener must
    receive it within `timeout`. That proves what a plain ping would not: that another
    session's commit reaches this one (not so through a transaction-mode pooler, where LISTEN
    is not kept) and that the triggers are there (not so before `alembic upgrade head`, or with
    them disabled). Subscribers are live only while the last check passed; otherwise they are
    dark, and the listener reconnects every `retry_after` seconds.
    """

    def __init__(
        self,
        subscribers: Sequence[ChangeSubscriber],
        connect: Callable[[str], Any],
        *,
        timeout: float,
        check_every: float = 1.0,
        retry_after: float = 1.0,
    ) -> None:
        self._subscribers = tuple(subscribers)
        self._live = False
        self._connect = connect
        self._timeout = timeout
        self._check_every = check_every
        self._retry_after = retry_after
        self._task: asyncio.Task[None] | None = None
        self._probe_channel = f"{CHANNEL}_probe_{uuid.uuid4().hex}"
        self._probes = 0
        self._probe_returned = asyncio.Event()
        self._warned = False  # one warning per outage, not one per retry

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=LISTENER_NAME)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._go_dark()

    async def _run(self) -> None:
        while True:
            connections: list[asyncpg.Connection] = []
            try:
                for name in (LISTENER_NAME, PROBER_NAME):
                    connections.append(await self._connect(name))
                await self._listen(*connections)
            except _CONNECTION_ERRORS as exc:
                self._warn("Not listening for user changes (%r); retrying", exc)
            except Exception:
                # Remembering nothing is always safe; keep trying, loudly.
                logger.exception("The user change listener failed; retrying")
            finally:
                self._go_dark()
                for connection in connections:
                    connection.terminate()
            await asyncio.sleep(self._retry_after)

    async def _listen(self, listener: asyncpg.Connection, prober: asyncpg.Connection) -> None:
        for connection in (listener, prober):
            # Dark at once when either closes: a notification may already be lost.
            connection.add_termination_listener(lambda _connection: self._go_dark())
        await listener.add_listener(CHANNEL, self._on_notification)
        await listener.add_listener(self._probe_channel, self._on_probe)
        while not listener.is_closed():
            if await self._check(prober):
                if not self._live:
                    self._go_live()
                    self._warned = False
                    logger.info("Listening for user changes")
            else:
                self._go_dark()
                self._warn(
                    "The jobs_feed triggers are missing or disabled (alembic upgrade head?): "
                    "every request reads the database"
                )
            await asyncio.sleep(self._check_every)
        raise asyncpg.InterfaceError("the listening connection was closed")

    async def _check(self, prober: asyncpg.Connection) -> bool:
        """True when the triggers are all enabled; raises TimeoutError when a notification
        committed by the prober does not reach the listener in time."""
        self._probes += 1
        self._probe_returned.clear()
        row = await prober.fetchrow(
            _PROBE_SQL,
            self._probe_channel,
            str(self._probes),
            list(TRIGGERS),
            timeout=self._timeout,
        )
        try:
            async with asyncio.timeout(self._timeout):
                await self._probe_returned.wait()
        except TimeoutError:
            raise TimeoutError(
                f"a notification did not arrive within {self._timeout:g} s"
            ) from None
        return row is not None and row["enabled"] == len(TRIGGERS)

    def _on_probe(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == str(self._probes):
            self._probe_returned.set()

    def _warn(self, message: str, *args: object) -> None:
        if not self._warned:
            logger.warning(message, *args)
        self._warned = True

    def _go_live(self) -> None:
        self._live = True
        for subscriber in self._subscribers:
            subscriber.go_live()

    def _go_dark(self) -> None:
        self._live = False
        for subscriber in self._subscribers:
            subscriber.go_dark()

    def _on_notification(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        # The cache first: a woken stream checks its token against it.
        if payload.isdigit():
            user_ids = (int(payload),)
            for subscriber in self._subscribers:
                subscriber.users_changed(user_ids)
        else:  # "*": any user may have changed (TRUNCATE users)
            for subscriber in self._subscribers:
                subscriber.all_users_changed()


def create_change_listener(
    bind: AsyncEngine, settings: Settings, subscribers: Sequence[ChangeSubscriber]
) -> ChangeListener | None:
    """The listener for the app's PostgreSQL database; None where none can run: on SQLite, or
    behind PgBouncer in transaction mode (LISTEN needs a session of its own). It runs with
    REVALIDATION_CACHE_USERS=0 too (the cache then remembers nothing): event streams need it."""
    if bind.dialect.name != "postgresql" or settings.database_pgbouncer:
        return None
    connect_kwargs = asyncpg_connect_kwargs(bind, settings)
    server_settings = connect_kwargs.pop("server_settings", {})

    def connect(name: str) -> Any:
        return asyncpg.connect(
            **connect_kwargs, server_settings={**server_settings, "application_name": name}
        )

    return ChangeListener(
        subscribers,
        connect,
        timeout=settings.database_timeout_seconds,
    )

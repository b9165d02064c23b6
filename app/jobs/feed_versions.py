"""What a dashboard's revalidation asks the database, remembered until the database says it
changed.

A poll with If-None-Match whose ETag still matches costs one round trip only to learn that
nothing changed: the user's `jobs_version`, and that the token still holds (active user, same
token version, not revoked). That round trip is about half of a 304's CPU. FeedVersions keeps
those answers per user and forgets a user the moment something they depend on changes:

- in another process (another worker, the CLI, psql): triggers on `users` and `revoked_tokens`
  send `NOTIFY jobs_feed, '<user_id>'` on commit (migration 4ad51c240924), and FeedListener
  LISTENs on a connection of its own;
- in this process: the request's session notes each user it changed (`note_user_changed`), and
  get_session forgets them right after the commit, before the response goes out, so a client
  never has its own write answered by a stale 304.

Only revalidations are answered from memory, and a 304 carries no body: in the milliseconds
between another process's commit and its notification arriving here, a poll may still be told
"unchanged" once more; it never receives data it could not already see. While FeedListener is
not listening (not yet connected, connection lost, PgBouncer in transaction mode), nothing is
remembered and every poll asks the database.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, UOWTransaction

from app.core.config import Settings
from app.core.db import asyncpg_connect_kwargs, note_user_changed
from app.core.security import TokenClaims
from app.models import RevokedToken, User

logger = logging.getLogger(__name__)

CHANNEL = "jobs_feed"
LISTENER_NAME = "jobs-feed-listener"
ALL_USERS = "*"  # the payload when any user may have changed (TRUNCATE users)
# Tokens remembered per user: one per signed-in browser or script is plenty.
MAX_TOKENS_PER_USER = 16
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(slots=True)
class _Known:
    jobs_version: int
    tokens: set[tuple[int, str]] = field(default_factory=set)  # (token_version, jti) that hold


class FeedVersions:
    """Each user's jobs_version, for the tokens known to still hold; at most `max_users` users,
    the longest-remembered dropped first. Used from the event loop only.

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

    def lookup(self, claims: TokenClaims) -> int | None:
        """The user's jobs_version if this token is known to hold, else None (ask the database)."""
        known = self._known.get(claims.user_id)
        if known is not None and (claims.token_version, claims.jti) in known.tokens:
            return known.jobs_version
        return None

    def generation(self) -> int:
        return self._generation

    def remember(self, claims: TokenClaims, jobs_version: int, generation: int) -> None:
        """Keep what the database answered for a read that started at `generation`."""
        if not self._live or generation != self._generation or self._max_users == 0:
            return
        known = self._known.get(claims.user_id)
        if known is None:
            if len(self._known) >= self._max_users:
                del self._known[next(iter(self._known))]
            known = self._known[claims.user_id] = _Known(jobs_version)
        elif known.jobs_version != jobs_version:
            # Two reads disagree and no change has arrived yet: its notice is on the way.
            del self._known[claims.user_id]
            return
        if len(known.tokens) >= MAX_TOKENS_PER_USER:
            known.tokens.clear()
        known.tokens.add((claims.token_version, claims.jti))

    def forget(self, user_ids: Iterable[int]) -> None:
        self._generation += 1
        for user_id in user_ids:
            self._known.pop(user_id, None)

    def forget_all(self) -> None:
        self._generation += 1
        self._known.clear()

    def go_live(self) -> None:
        """Notifications now arrive: from here on, answers may be remembered."""
        self.forget_all()
        self._live = True

    def go_dark(self) -> None:
        """Notifications may be missed: remember nothing until live again."""
        self._live = False
        self.forget_all()


class FeedListener:
    """LISTENs on `jobs_feed` on a connection of its own and keeps FeedVersions in step.

    The connection is checked every `check_every` seconds, so one that died silently (a
    network cut) is noticed within that plus `timeout`. Whenever it is not certain to be
    listening, FeedVersions is dark; it reconnects every `retry_after` seconds until it is.
    """

    def __init__(
        self,
        versions: FeedVersions,
        connect: Callable[[], Any],
        *,
        timeout: float,
        check_every: float = 1.0,
        retry_after: float = 1.0,
    ) -> None:
        self._versions = versions
        self._connect = connect
        self._timeout = timeout
        self._check_every = check_every
        self._retry_after = retry_after
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="jobs-feed-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._versions.go_dark()

    async def _run(self) -> None:
        reported = False  # one warning per outage, not one per retry
        while True:
            try:
                connection: asyncpg.Connection = await self._connect()
            except _CONNECTION_ERRORS as exc:
                if not reported:
                    logger.warning("Cannot listen for job feed changes: %r; retrying", exc)
                reported = True
            else:
                reported = False
                try:
                    await self._listen(connection)
                except _CONNECTION_ERRORS as exc:
                    logger.warning("Lost the job feed listener: %r; reconnecting", exc)
                except Exception:
                    # Remembering nothing is always safe; keep trying, loudly.
                    logger.exception("The job feed listener failed; reconnecting")
                finally:
                    self._versions.go_dark()
                    connection.terminate()
            await asyncio.sleep(self._retry_after)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        # Dark at once when the connection closes: a notification may already be lost.
        connection.add_termination_listener(lambda _connection: self._versions.go_dark())
        await connection.add_listener(CHANNEL, self._on_notification)
        self._versions.go_live()
        logger.info("Listening for job feed changes")
        while True:
            await asyncio.sleep(self._check_every)
            # Raises once the connection is closed, or when it went silent (a network cut).
            await connection.fetchval("SELECT 1", timeout=self._timeout)

    def _on_notification(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        if payload != ALL_USERS and payload.isdigit():
            self._versions.forget((int(payload),))
        else:
            self._versions.forget_all()


def create_feed_listener(
    bind: AsyncEngine, settings: Settings, versions: FeedVersions
) -> FeedListener | None:
    """The listener for the app's PostgreSQL database; None where none can run: on SQLite,
    behind PgBouncer in transaction mode (LISTEN needs a session of its own), or with
    REVALIDATION_CACHE_USERS=0."""
    if (
        bind.dialect.name != "postgresql"
        or settings.database_pgbouncer
        or settings.revalidation_cache_users == 0
    ):
        return None
    connect_kwargs = asyncpg_connect_kwargs(bind, settings)
    # Named, so that it can be told apart in pg_stat_activity.
    server_settings = {
        **connect_kwargs.pop("server_settings", {}),
        "application_name": LISTENER_NAME,
    }
    return FeedListener(
        versions,
        partial(asyncpg.connect, **connect_kwargs, server_settings=server_settings),
        timeout=settings.database_timeout_seconds,
    )


@event.listens_for(Session, "after_flush")
def _note_changed_users(session: Session, _flush: UOWTransaction) -> None:
    """Changes made through the ORM: a user's row (tokens, activity) and new revocations."""
    for instance in chain(session.dirty, session.deleted):
        if isinstance(instance, User):
            note_user_changed(session, instance.user_id)
    for instance in session.new:
        if isinstance(instance, RevokedToken):
            note_user_changed(session, instance.user_id)

"""Engine, sessions and the per-request unit of work."""

import asyncio
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from itertools import chain
from typing import Annotated, Any, Protocol

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, UOWTransaction

from app.core.config import Settings
from app.models import RevokedToken, User


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(database_url: str, **options: Any) -> AsyncEngine:
    if is_sqlite(database_url):
        engine = create_async_engine(database_url, **options)
        _make_sqlite_transactional(engine)
        return engine
    engine = create_async_engine(database_url, **options)
    _ping_connections_back_from_idle(engine)
    return engine


# A connection that sat idle this long is pinged before use.
IDLE_PING_SECONDS = 1.0


def _ping_connections_back_from_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling without a round trip per request.

    A connection that died while idle (the database restarted, a network blip) is found by a
    ping and replaced before a request uses it, so the service recovers by itself. Unlike
    `pool_pre_ping`, a connection handed straight back and forth under load is not pinged:
    on the hot path that ping would be one more round trip per request.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is not None and time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool drops this connection and checks out (or opens) another.
            raise DisconnectionError from exc


def _asyncpg_connect_args(settings: Settings) -> dict[str, Any]:
    """What asyncpg.connect() gets besides the address, for both pools."""
    connect_args: dict[str, Any] = {
        "timeout": settings.database_timeout_seconds,
        # Client side: a query on a connection whose peer vanished gives up instead of
        # hanging until TCP notices.
        "command_timeout": settings.database_statement_timeout_seconds,
    }
    if settings.database_pgbouncer:
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    return connect_args


def create_app_engine(settings: Settings) -> AsyncEngine:
    if is_sqlite(settings.database_url):
        return create_engine(settings.database_url)
    url = make_url(settings.database_url)
    if settings.database_pgbouncer:
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
    return create_engine(
        url.render_as_string(hide_password=False),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_timeout_seconds,
        connect_args=_asyncpg_connect_args(settings),
    )


def _unique_statement_name() -> str:
    # PgBouncer may hand each transaction another server connection: names must never clash.
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _make_sqlite_transactional(engine: AsyncEngine) -> None:
    # The sqlite3 driver's legacy mode starts no transaction for SELECT or SAVEPOINT, so a rollback
    # would not undo a released savepoint. SQLAlchemy takes over BEGIN instead, and SQLite gets
    # its foreign keys enforced, which it does not do by default.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def create_sessionmaker(bind: Any, **options: Any) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind=bind, expire_on_commit=False, autoflush=False, **options)


READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PoolExhausted(TimeoutError):
    """No database connection came free in time: the database is too slow or unreachable."""


class FairGate:
    """First come, first served admission to a connection pool.

    Both SQLAlchemy's async pool and asyncpg's wait on an asyncio.Queue, which lets a newcomer
    take a connection just handed to a waiter; the waiter then queues again at the back. Under
    overload some requests wait many times the average and time out while others pass. This
    gate has one slot per connection and hands a freed slot straight to the oldest waiter, so
    past it a connection is always free and every request waits about the same.

    Not asyncio.Semaphore with asyncio.timeout(): under load nearly every request waits here,
    and that pair costs several times the plain timer used below (~3% of a poll's CPU).
    """

    def __init__(self, slots: int, timeout: float) -> None:
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timeout = timeout

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        if self._free and not self._waiters:
            self._free -= 1
        else:
            await self._wait_for_slot()
        try:
            yield
        finally:
            self._release()

    async def _wait_for_slot(self) -> None:
        loop = asyncio.get_running_loop()
        slot: asyncio.Future[None] = loop.create_future()
        self._waiters.append(slot)
        timer = loop.call_later(self._timeout, self._give_up, slot)
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                self._release()  # handed a slot just as we were cancelled: pass it on
            raise
        finally:
            timer.cancel()

    def _give_up(self, slot: "asyncio.Future[None]") -> None:
        if not slot.done():
            slot.set_exception(
                PoolExhausted(f"no database connection came free within {self._timeout:g} s")
            )

    def _release(self) -> None:
        # Waiters that gave up or were cancelled stay queued until reached here.
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():
                slot.set_result(None)  # handed over: no newcomer can take it in between
                return
        self._free += 1


class Reader(Protocol):
    """Single-statement reads on asyncpg itself, for the dashboard's poll (PostgreSQL only)."""

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None: ...

    async def close(self) -> None: ...


# Errors that mean "this pooled connection was dead", not "the database is down": a read is
# retried once on a fresh connection, as SQLAlchemy's pool does after its ping.
_STALE_CONNECTION_ERRORS = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
)


class PoolReader:
    """Reads from asyncpg's own pool, beside the engine's.

    A checkout and return through SQLAlchemy's async engine costs about 85 µs of CPU
    (greenlet switches, the isolation level set and reset); through asyncpg's pool about 18 µs,
    on a poll whose whole budget is a few hundred. Its statements are single SELECTs in
    autocommit that leave no session state behind, so a returned connection needs no RESET ALL
    round trip. Connections open on first use, so start-up does not need the database.
    """

    def __init__(self, connect_kwargs: dict[str, Any], max_size: int, timeout: float) -> None:
        self._connect_kwargs = connect_kwargs
        self._max_size = max_size
        self._gate = FairGate(max_size, timeout)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        min_size=0,
                        max_size=self._max_size,
                        reset=_keep_session,
                        **self._connect_kwargs,
                    )
        return self._pool

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        async with self._gate.admit():
            pool = await self._get_pool()
            for attempt in (1, 2):
                # Past the gate a connection is free or can be opened (within the connect
                # timeout), so no second timer is needed here.
                async with pool.acquire() as connection:
                    try:
                        row: asyncpg.Record | None = await connection.fetchrow(query, *args)
                    except _STALE_CONNECTION_ERRORS:
                        if attempt == 2:
                            raise
                        continue
                    return row
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """Nothing to reset: asyncpg has already rolled back any open transaction."""


class ConnectionReader:
    """Reads on one SQLAlchemy connection's asyncpg connection: inside the tests' transaction,
    so the hot path sees what a test arranged and the rollback undoes it."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        raw = await self._connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        row: asyncpg.Record | None = await driver.fetchrow(query, *args)
        return row

    async def close(self) -> None:
        pass


def asyncpg_connect_kwargs(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
    """asyncpg.connect()'s arguments for the engine's database, beside the engine's own pool."""
    _args, address = engine.dialect.create_connect_args(engine.url)
    kwargs = {**address, **_asyncpg_connect_args(settings)}
    # SQLAlchemy's own, not asyncpg's. Without its statement cache asyncpg prepares unnamed
    # statements, which PgBouncer in transaction mode allows: no names to keep unique.
    kwargs.pop("prepared_statement_cache_size", None)
    kwargs.pop("prepared_statement_name_func", None)
    return kwargs


def create_reader(bind: AsyncEngine | AsyncConnection, settings: Settings) -> Reader | None:
    """The hot path's reader on PostgreSQL; None elsewhere (the regular routes serve all)."""
    if bind.dialect.name != "postgresql":
        return None
    if isinstance(bind, AsyncConnection):
        return ConnectionReader(bind)
    return PoolReader(
        asyncpg_connect_kwargs(bind, settings),
        max_size=settings.database_pool_size,
        timeout=settings.database_timeout_seconds,
    )


def install_sessionmakers(state: Any, bind: AsyncEngine | AsyncConnection, **options: Any) -> None:
    """The app's sessions: `sessionmaker` for requests that write, `read_sessionmaker` for
    those that only read; and `reader`, the hot path's (see `create_reader`).

    On PostgreSQL reads run in autocommit: a poll then sends no BEGIN and no COMMIT, two round
    trips fewer, and each of its statements sees committed data. Bound to a connection (the
    tests' rolled-back transaction), all of them use that connection.
    """
    state.sessionmaker = create_sessionmaker(bind, **options)
    state.read_sessionmaker = state.sessionmaker
    state.session_gate = None
    if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
        autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")
        state.read_sessionmaker = create_sessionmaker(autocommit, **options)
        settings: Settings = state.settings
        state.session_gate = FairGate(
            settings.database_pool_size + settings.database_max_overflow,
            settings.database_timeout_seconds,
        )
    state.reader = create_reader(bind, state.settings)


async def dispose_database(state: Any) -> None:
    """Close the hot path's reader and the engine's pool."""
    reader: Reader | None = getattr(state, "reader", None)
    if reader is not None:
        await reader.close()
    await state.engine.dispose()


# session.info key: the users whose token state or jobs_version the session changed.
_CHANGED_USERS = "changed_users"


def note_user_changed(session: AsyncSession | Session, user_id: int) -> None:
    """Tell get_session that this user's dashboard feed changes when the session commits
    (see app/jobs/revalidation_cache.py)."""
    session.info.setdefault(_CHANGED_USERS, set()).add(user_id)


@event.listens_for(Session, "after_flush")
def _note_changed_users(session: Session, _flush: UOWTransaction) -> None:
    """Changes made through the ORM: a user's row (tokens, activity) and new revocations."""
    for instance in chain(session.dirty, session.deleted):
        if isinstance(instance, User):
            note_user_changed(session, instance.user_id)
    for instance in session.new:
        if isinstance(instance, RevokedToken):
            note_user_changed(session, instance.user_id)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: committed once on success, rolled back on any error.

    After the commit, and before the response is sent, the app forgets what it remembered
    about the users the transaction changed (`state.forget_changed_users`)."""
    state = request.app.state
    read_only = request.method in READ_ONLY_METHODS
    sessionmaker: async_sessionmaker[AsyncSession] = (
        state.read_sessionmaker if read_only else state.sessionmaker
    )
    gate: FairGate | None = state.session_gate
    async with gate.admit() if gate else nullcontext(), sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            # Also when the commit raised: it may have gone through all the same (the
            # connection lost while it was acknowledged), and forgetting is always safe.
            changed = session.info.pop(_CHANGED_USERS, None)
            if changed and (forget := getattr(state, "forget_changed_users", None)):
                forget(changed)


# scope="function": the commit runs before the response is sent, so a failed commit cannot
# answer 200.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

"""Engine, sessions and the per-request unit of work."""

import asyncio
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Annotated, Any

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

from app.core.config import Settings


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
    """What asyncpg.connect() gets besides the address."""
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


def create_app_engine(settings: Settings, *, autocommit: bool = False) -> AsyncEngine:
    """The engine for DATABASE_URL. With `autocommit` (PostgreSQL), its connections run each
    statement as a transaction of its own, for work made of single-statement steps: no BEGIN
    and no COMMIT round trip around each."""
    if is_sqlite(settings.database_url):
        return create_engine(settings.database_url)
    url = make_url(settings.database_url)
    if settings.database_pgbouncer:
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_engine(
        url.render_as_string(hide_password=False),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_timeout_seconds,
        connect_args=_asyncpg_connect_args(settings),
        **options,
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

    SQLAlchemy's async pool waits on an asyncio.Queue, which lets a newcomer take a connection
    just handed to a waiter; the waiter then queues again at the back. Under
    overload some requests wait many times the average and time out while others pass. This
    gate has one slot per connection and hands a freed slot straight to the oldest waiter, so
    past it a connection is always free and every request waits about the same.

    Not asyncio.Semaphore with asyncio.timeout(): under load nearly every request waits here,
    and that pair costs more than the plain timer used below.
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


def asyncpg_connect_kwargs(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
    """asyncpg.connect()'s arguments for the engine's database, for connections of one's own
    beside the engine's pool (a LISTEN needs one)."""
    _args, address = engine.dialect.create_connect_args(engine.url)
    kwargs = {**address, **_asyncpg_connect_args(settings)}
    # SQLAlchemy's own arguments, not asyncpg's.
    kwargs.pop("prepared_statement_cache_size", None)
    kwargs.pop("prepared_statement_name_func", None)
    return kwargs


SessionHook = Callable[[AsyncSession], None]


@dataclass(slots=True)
class Database:
    """The engine and the sessions requests get from it.

    `sessionmaker` serves requests that write, `read_sessionmaker` those that only read. On
    PostgreSQL reads run in autocommit: a poll then sends no BEGIN and no COMMIT, two round
    trips fewer, and each of its statements sees committed data. `after_session` hooks run
    when a request's session ends, after its commit and before the response is sent.
    """

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    gate: FairGate | None = None
    after_session: list[SessionHook] = field(default_factory=list)

    def admitted(self) -> AbstractAsyncContextManager[None]:
        """A turn at the pool (FairGate), where there is a gate."""
        return self.gate.admit() if self.gate else nullcontext()

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session that only reads, outside any request (an events stream's), admitted to
        the pool as a request's; its connection goes back when the block ends."""
        async with self.admitted(), self.read_sessionmaker() as session:
            yield session

    def install_sessionmakers(self, bind: AsyncEngine | AsyncConnection, **options: Any) -> None:
        """Sessions on `bind`: the engine, or one connection (the tests' rolled-back
        transaction), which then serves every request."""
        self.sessionmaker = self.read_sessionmaker = create_sessionmaker(bind, **options)
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
            autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")
            self.read_sessionmaker = create_sessionmaker(autocommit, **options)


def create_database(settings: Settings) -> Database:
    engine = create_app_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    database = Database(engine, sessionmaker, sessionmaker)
    database.install_sessionmakers(engine)
    if engine.dialect.name == "postgresql":
        # One slot per pooled connection. Admitting the overflow too would open and close an
        # overflow connection each time demand crosses the pool size (a new PostgreSQL backend,
        # and a TLS attempt, every time); the overflow stays for what does not queue here, such
        # as the readiness probe.
        database.gate = FairGate(settings.database_pool_size, settings.database_timeout_seconds)
    return database


def get_database(request: Request) -> Database:
    database: Database = request.app.state.context.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: committed once on success, rolled back on any error.
    Requests that only read (GET, HEAD, OPTIONS) must not write."""
    database = get_database(request)
    read_only = request.method in READ_ONLY_METHODS
    sessionmaker = database.read_sessionmaker if read_only else database.sessionmaker
    async with database.admitted(), sessionmaker() as session:
        try:
            yield session
            # Reads commit nothing (they write nothing, and on PostgreSQL run in autocommit);
            # a write that began no transaction has nothing to commit.
            if not read_only and session.in_transaction():
                await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            # Also when the commit raised: it may have gone through all the same (the
            # connection lost while it was acknowledged).
            for hook in database.after_session:
                hook(session)


# scope="function": the commit runs before the response is sent, so a failed commit cannot
# answer 200.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

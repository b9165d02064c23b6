"""Engine, sessions and the per-request unit of work."""

import time
import uuid
from collections.abc import AsyncIterator
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


def create_app_engine(settings: Settings) -> AsyncEngine:
    if is_sqlite(settings.database_url):
        return create_engine(settings.database_url)
    timeout = settings.database_timeout_seconds
    connect_args: dict[str, Any] = {
        "timeout": timeout,
        # Client side: a query on a connection whose peer vanished gives up instead of
        # hanging until TCP notices.
        "command_timeout": settings.database_statement_timeout_seconds,
    }
    url = make_url(settings.database_url)
    if settings.database_pgbouncer:
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
    return create_engine(
        url.render_as_string(hide_password=False),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=timeout,
        connect_args=connect_args,
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


def install_sessionmakers(state: Any, bind: AsyncEngine | AsyncConnection, **options: Any) -> None:
    """The app's sessions: `sessionmaker` for requests that write, `read_sessionmaker` for
    those that only read.

    On PostgreSQL reads run in autocommit: a poll then sends no BEGIN and no COMMIT, two round
    trips fewer, and each of its statements sees committed data. Bound to a connection (the
    tests' rolled-back transaction), both are the same.
    """
    state.sessionmaker = create_sessionmaker(bind, **options)
    state.read_sessionmaker = state.sessionmaker
    if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
        autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")
        state.read_sessionmaker = create_sessionmaker(autocommit, **options)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request, one transaction: committed once on success, rolled back on any error."""
    state = request.app.state
    read_only = request.method in READ_ONLY_METHODS
    sessionmaker: async_sessionmaker[AsyncSession] = (
        state.read_sessionmaker if read_only else state.sessionmaker
    )
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit runs before the response is sent, so a failed commit cannot
# answer 200.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

"""Fixtures for the operations tests.

`build_app` makes in-process apps with settings of the test's choosing (log format, metrics,
...), inside the test's rolled-back transaction like the shared `app` fixture. Build the app in
the test body, after `capsys` is active: the app's log handler writes to the `sys.stdout` of the
moment it is created.

`ops_database_url` is for the tests that need real `python -m app serve` processes (started by
the suite-wide `servers` fixture): a dedicated PostgreSQL database (created, migrated, dropped).
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import create_engine, is_sqlite
from tests.apps import OpenApp, make_settings, open_app
from tests.conftest import alembic_config

# Named after the suite's database, so that runs on different test databases (one per
# checkout) never drop each other's server database.
OPS_DATABASE_SUFFIX = "_ops"


AppBuilder = Callable[..., Awaitable[OpenApp]]


@contextmanager
def _logging_restored() -> Iterator[None]:
    """Put back the log handler and level that were there before: the apps built here point
    theirs at capsys's stream, which is closed after the test, and may log at DEBUG."""
    root = logging.getLogger()
    level = root.level
    previous = [h for h in root.handlers if getattr(h, "_jobs_api", False)]
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_jobs_api", False)]:
            root.removeHandler(handler)
        for handler in previous:
            root.addHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def build_app(database_url: str, connection: AsyncConnection) -> AsyncIterator[AppBuilder]:
    with _logging_restored():
        async with AsyncExitStack() as stack:

            async def build(**overrides: Any) -> OpenApp:
                # A 500 reaches the client as a response, as it would over HTTP.
                return await stack.enter_async_context(
                    open_app(
                        make_settings(**{"database_url": database_url, **overrides}),
                        connection=connection,
                        raise_app_exceptions=False,
                    )
                )

            yield build


# --------------------------------------------------------------------------- real servers


async def _recreate_database(server_url: str, name: str, *, create: bool) -> None:
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if create:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def ops_database_url(database_url: str) -> Iterator[str]:
    """A database of its own for the servers, on the same PostgreSQL as the suite's."""
    if is_sqlite(database_url):
        pytest.fail("real-server tests need PostgreSQL: mark them postgres_only")
    url = make_url(database_url)
    maintenance = url.set(database="postgres").render_as_string(hide_password=False)
    ops_database = f"{url.database}{OPS_DATABASE_SUFFIX}"
    ops_url = url.set(database=ops_database).render_as_string(hide_password=False)
    asyncio.run(_recreate_database(maintenance, ops_database, create=True))
    command.upgrade(alembic_config(ops_url), "head")
    try:
        yield ops_url
    finally:
        asyncio.run(_recreate_database(maintenance, ops_database, create=False))

"""Test harness: the schema is built once by `alembic upgrade head`; every test runs inside a
transaction that is rolled back, and talks to the app over ASGI.

TEST_DATABASE_URL picks the database (PostgreSQL in CI); without it the suite runs on a fresh
SQLite file. When PostgreSQL was asked for and does not answer, the run stops with an error.
"""

import asyncio
import fcntl
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, is_sqlite
from tests.apps import OpenApp, make_settings, open_app
from tests.ops.servers import Server, ServerStarter, start_server

ROOT = Path(__file__).resolve().parent.parent
# The browser tests need playwright (the `e2e` extra) and their own servers: only
# `make e2e` (tests/e2e/run.sh, which sets E2E=1) collects them.
collect_ignore = [] if os.environ.get("E2E") == "1" else ["e2e"]
_LOCK = pytest.StashKey[IO[str]]()
_SQLITE_DIR = pytest.StashKey[str]()


def pytest_sessionstart(session: pytest.Session) -> None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url and not is_sqlite(url):
        try:
            asyncio.run(_ping(url))
        except Exception as exc:
            pytest.exit(f"TEST_DATABASE_URL={url} does not answer: {exc!r}", returncode=3)
        # The run rebuilds the schema: a second run on the same database waits its turn.
        lock_name = hashlib.sha256(url.encode()).hexdigest()[:16]
        lock = open(Path(tempfile.gettempdir()) / f"jobs-api-tests-{lock_name}.lock", "w")  # noqa: SIM115
        fcntl.flock(lock, fcntl.LOCK_EX)
        session.config.stash[_LOCK] = lock


async def _ping(url: str) -> None:
    engine = create_engine(url, connect_args={"timeout": 5})
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The SQLite run deselects what only PostgreSQL can show; it never skips it silently.
    if is_sqlite(_database_url_from_env(config)):
        selected = [item for item in items if "postgres_only" not in item.keywords]
        deselected = [item for item in items if "postgres_only" in item.keywords]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = selected


def _database_url_from_env(config: pytest.Config) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    if _SQLITE_DIR not in config.stash:
        config.stash[_SQLITE_DIR] = tempfile.mkdtemp(prefix="jobs-api-tests-")
    return f"sqlite+aiosqlite:///{config.stash[_SQLITE_DIR]}/test.db"


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


async def _drop_everything(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def database_url(pytestconfig: pytest.Config) -> str:
    url = _database_url_from_env(pytestconfig)
    if is_sqlite(url):
        Path(url.removeprefix("sqlite+aiosqlite:///")).unlink(missing_ok=True)
    else:
        asyncio.run(_drop_everything(url))
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            await transaction.rollback()


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """For arranging data; it shares the test's transaction with the app."""
    async with create_sessionmaker(connection, join_transaction_mode="create_savepoint")() as s:
        yield s


@pytest.fixture
async def running(settings: Settings, connection: AsyncConnection) -> AsyncIterator[OpenApp]:
    """The app inside the test's transaction: each request's commit releases a savepoint, the
    test's rollback undoes everything."""
    async with open_app(settings, connection=connection) as running:
        yield running


@pytest.fixture
def app(running: OpenApp) -> FastAPI:
    return running.app


@pytest.fixture
def client(running: OpenApp) -> AsyncClient:
    return running.client


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerStarter]:
    """Starts `python -m app serve` processes (tests/ops/servers.py), each from an empty working
    directory; every one is killed when the test ends, even when it fails."""
    started: list[Server] = []

    def start(name: str, env: dict[str, str]) -> Server:
        server = start_server(name, env, workdir=tmp_path)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()

"""DATABASE_PGBOUNCER=true: asyncpg's and SQLAlchemy's statement caches are off and statement
names never repeat, so that PgBouncer in transaction mode (another server connection per
transaction) cannot meet a prepared statement it does not know. No PgBouncer here: this checks
the engine's settings and that it works against the real PostgreSQL."""

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import create_app_engine
from tests.apps import open_app

pytestmark = pytest.mark.postgres_only

QUERY = text("SELECT CAST(:n AS integer) + 1 AS next").bindparams(bindparam("n"))


def _settings(database_url: str, *, pgbouncer: bool) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        database_pgbouncer=pgbouncer,
        database_pool_size=1,
        database_max_overflow=0,
    )


async def _caches(engine: AsyncEngine) -> tuple[object, int, list[str]]:
    """SQLAlchemy's prepared-statement cache, asyncpg's cache size, and two statement names."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        adapted = raw.dbapi_connection
        asyncpg_connection = raw.driver_connection
        names = [adapted._prepared_statement_name_func() for _ in range(2)]
        return (
            adapted._prepared_statement_cache,
            asyncpg_connection._stmt_cache.get_max_size(),
            names,
        )


async def test_pgbouncer_mode_turns_the_statement_caches_off(database_url: str) -> None:
    engine = create_app_engine(_settings(database_url, pgbouncer=True))
    try:
        sqlalchemy_cache, asyncpg_cache_size, names = await _caches(engine)
        assert sqlalchemy_cache is None
        assert asyncpg_cache_size == 0
        assert names[0] != names[1]  # unique names: no clash on a shared server connection
        assert all(name.startswith("__asyncpg_") for name in names)

        # The same statement, many times, in separate transactions on the one pooled connection.
        for n in range(5):
            async with engine.begin() as connection:
                assert (await connection.execute(QUERY, {"n": n})).scalar_one() == n + 1
        async with engine.connect() as connection:
            for n in range(5):
                assert (await connection.execute(QUERY, {"n": n})).scalar_one() == n + 1
                await connection.commit()
    finally:
        await engine.dispose()


async def test_without_pgbouncer_mode_the_caches_stay_on(database_url: str) -> None:
    engine = create_app_engine(_settings(database_url, pgbouncer=False))
    try:
        sqlalchemy_cache, asyncpg_cache_size, _names = await _caches(engine)
        assert sqlalchemy_cache is not None
        assert asyncpg_cache_size > 0
        async with engine.connect() as connection:
            assert (await connection.execute(QUERY, {"n": 1})).scalar_one() == 2
    finally:
        await engine.dispose()


async def test_an_app_in_pgbouncer_mode_answers_readiness_repeatedly(database_url: str) -> None:
    settings = _settings(database_url, pgbouncer=True)
    async with open_app(settings) as running:
        for _ in range(5):
            response = await running.client.get("/readyz")  # a query on the app's own engine
            assert response.status_code == 200, response.text

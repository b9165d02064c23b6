"""The migrations, run for real on the test database. Synchronous tests: alembic's env.py runs
its own event loop."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from app.core.db import create_engine
from app.models import Base
from tests.conftest import alembic_config

APP_TABLES = set(Base.metadata.tables)


async def _inspect(database_url: str, look: Any) -> Any:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _job_indexes(connection: Connection) -> set[str]:
    return {index["name"] for index in inspect(connection).get_indexes("jobs")}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


@pytest.fixture
def at_head_afterwards(database_url: str) -> Iterator[str]:
    """Whatever the test does to the schema, the rest of the suite finds it at head."""
    yield database_url
    command.upgrade(alembic_config(database_url), "head")


def test_downgrade_to_base_and_back_to_head(at_head_afterwards: str) -> None:
    database_url = at_head_afterwards
    config = alembic_config(database_url)
    assert {"users", "jobs"} <= APP_TABLES

    command.downgrade(config, "base")

    assert not APP_TABLES & asyncio.run(_inspect(database_url, _tables))

    command.upgrade(config, "head")

    assert asyncio.run(_inspect(database_url, _tables)) >= APP_TABLES
    assert "ix_jobs_user_id_created_at_job_id" in asyncio.run(_inspect(database_url, _job_indexes))


def test_the_schema_at_head_matches_the_models(at_head_afterwards: str) -> None:
    database_url = at_head_afterwards
    command.upgrade(alembic_config(database_url), "head")

    assert asyncio.run(_inspect(database_url, _differences)) == []

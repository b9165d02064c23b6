"""The queue's fetch (procrastinate_fetch_job_v2) keeps its plan without statistics: before
the first ANALYZE of the queue table, PostgreSQL planned it as bitmap scans that read every
entry of finished work on every fetch (docs/jobs.md, "The fetch's plan"; migration
a6c20f602c74)."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command
from procrastinate.sql import queries
from sqlalchemy.engine import make_url

from tests.conftest import alembic_config

FETCH = "procrastinate_fetch_job_v2"
FINISHED_WORK = 2000


def _dsn(database_url: str, database: str) -> str:
    url = make_url(database_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A database of the test's own, migrated and never analyzed, as a new deployment's is."""
    name = f"{make_url(database_url).database}_fetch_{uuid.uuid4().hex[:8]}"
    server = await asyncpg.connect(_dsn(database_url, "postgres"))
    try:
        await server.execute(f'CREATE DATABASE "{name}"')
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        yield _dsn(database_url, name)
    finally:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.close()


def test_the_engine_fetches_through_the_function_the_migration_tunes() -> None:
    """A procrastinate release that fetches through another function needs the setting moved
    to it; one that recreates this function drops the setting, which the plan test catches."""
    assert f"FROM {FETCH}(" in queries["fetch_job"]


@pytest.mark.postgres_only
async def test_a_fetch_reads_the_index_of_waiting_work_in_order(fresh_database: str) -> None:
    """The plan is what is asserted: a fetch's cost is a matter of time, and time is not
    asserted here (docs/benchmarks.md measures it)."""
    connection = await asyncpg.connect(fresh_database)
    try:
        # Work queued, then taken and finished, as fetch and finish move it (in bulk here).
        await connection.execute(
            "SELECT procrastinate_defer_jobs_v1(array_agg(ROW('jobs', 'noop', 0, NULL, NULL,"
            " '{}'::jsonb, NULL)::procrastinate_job_to_defer_v1)) FROM generate_series(1, $1)",
            FINISHED_WORK,
        )
        for status in ("doing", "succeeded"):
            await connection.execute(
                "UPDATE procrastinate_jobs SET status = $1::procrastinate_job_status", status
            )
        plans: list[str] = []
        connection.add_log_listener(lambda _connection, message: plans.append(message.message))
        try:
            await connection.execute("LOAD 'auto_explain'")
        except asyncpg.InsufficientPrivilegeError:
            pytest.fail("the suite's PostgreSQL role must be a superuser (README, On PostgreSQL)")
        await connection.execute(
            "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
            " SET auto_explain.log_level = notice"
        )
        fetched = "SELECT id FROM procrastinate_fetch_job_v2(ARRAY['jobs'], NULL)"
        assert await connection.fetchval(fetched) is None
    finally:
        await connection.close()
    fetch_plans = [plan for plan in plans if "UPDATE procrastinate_jobs" in plan]
    assert fetch_plans, plans
    fetch_plan = fetch_plans[0]
    assert "Bitmap" not in fetch_plan, fetch_plan
    assert "Index Scan using procrastinate_jobs_priority_idx_v1" in fetch_plan, fetch_plan

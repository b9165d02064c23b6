"""The migrations, run for real on the test database. Synchronous tests: alembic's env.py runs
its own event loop."""

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from app.auth.revalidation_cache import TRIGGERS
from app.core.db import create_engine
from app.jobs.engine import ENGINE_TABLE_PREFIX
from app.models import Base
from app.models.job import SQLITE_CHANGE_COUNTER
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


def _not_the_engines(name: str | None, type_: str, _parents: object) -> bool:
    # The task engine's tables come from its own schema script, not from the models; SQLite's
    # change counter is its triggers' alone.
    return not (
        type_ == "table"
        and ((name or "").startswith(ENGINE_TABLE_PREFIX) or name == SQLITE_CHANGE_COUNTER)
    )


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": _not_the_engines}
    )
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


# --- the dashboard feed's notifications (migration 4ad51c240924), PostgreSQL only -------------

FEED_REVISION = "4ad51c240924"
FEED_TRIGGERS = set(TRIGGERS)


def _feed_triggers_and_function(connection: Connection) -> tuple[set[str], bool]:
    triggers = connection.execute(
        text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%jobs_feed%'")
    )
    function = connection.execute(
        text("SELECT count(*) FROM pg_proc WHERE proname = 'notify_jobs_feed'")
    )
    return {name for (name,) in triggers}, function.scalar_one() == 1


@pytest.mark.postgres_only
def test_feed_triggers_come_with_their_migration_and_go_with_it(at_head_afterwards: str) -> None:
    database_url = at_head_afterwards
    config = alembic_config(database_url)
    command.upgrade(config, "head")
    assert asyncio.run(_inspect(database_url, _feed_triggers_and_function)) == (
        FEED_TRIGGERS,
        True,
    )

    before = ScriptDirectory.from_config(config).get_revision(FEED_REVISION).down_revision
    assert isinstance(before, str)
    command.downgrade(config, before)

    assert asyncio.run(_inspect(database_url, _feed_triggers_and_function)) == (set(), False)

    command.upgrade(config, "head")
    assert asyncio.run(_inspect(database_url, _feed_triggers_and_function)) == (
        FEED_TRIGGERS,
        True,
    )


NOTICE_BOUND = 5.0  # a notification normally arrives within milliseconds


async def _notifications_of_updates(
    database_url: str, *updates: str
) -> tuple[int, list[list[str]]]:
    """A fresh user's id, and the jobs_feed payloads each UPDATE of that user (`$1`) sent,
    committed one by one on another connection than the one that LISTENs. A marker notification
    follows each update: notifications arrive in commit order, so once the marker is in,
    everything the update sent is in too, and nothing more will come."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    listening = await asyncpg.connect(dsn)
    writing = await asyncpg.connect(dsn)
    payloads: asyncio.Queue[str] = asyncio.Queue()
    user_id: int = await writing.fetchval(
        "INSERT INTO users (email, hashed_password) VALUES ($1, 'x') RETURNING user_id",
        f"notify-{uuid.uuid4().hex[:12]}@example.com",
    )
    try:
        await listening.add_listener("jobs_feed", lambda *args: payloads.put_nowait(args[-1]))
        sent: list[list[str]] = []
        for update in updates:
            await writing.execute(update, user_id)  # autocommit: committed on return
            marker = f"marker-{uuid.uuid4().hex}"
            await writing.execute("SELECT pg_notify('jobs_feed', $1)", marker)
            received: list[str] = []
            async with asyncio.timeout(NOTICE_BOUND):
                while (payload := await payloads.get()) != marker:
                    received.append(payload)
            sent.append(received)
        return user_id, sent
    finally:
        await listening.close()
        await writing.execute("DELETE FROM users WHERE user_id = $1", user_id)
        await writing.close()


@pytest.mark.postgres_only
def test_a_change_to_a_watched_column_notifies_the_user_and_others_do_not(
    database_url: str,
) -> None:
    """token_version and is_active each send exactly one NOTIFY on jobs_feed,
    with the user's id, once committed; a column no poll depends on (full_name), or an update
    that changes nothing, sends none."""
    user_id, sent = asyncio.run(
        _notifications_of_updates(
            database_url,
            "UPDATE users SET full_name = 'Someone Else' WHERE user_id = $1",
            "UPDATE users SET token_version = token_version + 1 WHERE user_id = $1",
            "UPDATE users SET is_active = false WHERE user_id = $1",
            "UPDATE users SET is_active = false WHERE user_id = $1",  # already false
        )
    )

    user = str(user_id)
    assert sent == [[], [user], [user], []]


@pytest.mark.postgres_only
def test_a_job_written_notifies_its_owner_and_is_stamped_with_its_transaction(
    database_url: str,
) -> None:
    """A job inserted or updated, by anyone (psql too), sends its owner's id on jobs_feed and
    records the writing transaction in changed_in (the events stream's replay reads it)."""
    insert = (
        "INSERT INTO jobs (user_id, job_name, job_type, created_at, updated_at)"
        " VALUES ($1, 'stamped', 'simple', now(), now())"
    )
    update = "UPDATE jobs SET progress = 50 WHERE user_id = $1"
    user_id, sent = asyncio.run(_notifications_of_updates(database_url, insert, update))
    assert sent == [[str(user_id)], [str(user_id)]]


@pytest.mark.postgres_only
def test_changed_in_is_the_writing_transaction(database_url: str) -> None:
    async def stamps() -> tuple[int, int, int]:
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        connection = await asyncpg.connect(dsn)
        try:
            async with connection.transaction():
                user_id = await connection.fetchval(
                    "INSERT INTO users (email, hashed_password) VALUES ($1, 'x') RETURNING user_id",
                    f"stamp-{uuid.uuid4().hex[:12]}@example.com",
                )
                stamped = await connection.fetchval(
                    "INSERT INTO jobs (user_id, job_name, job_type, created_at, updated_at)"
                    " VALUES ($1, 'a', 'simple', now(), now()) RETURNING changed_in",
                    user_id,
                )
                own = await connection.fetchval("SELECT pg_current_xact_id()::text::bigint")
            later = await connection.fetchval(
                "UPDATE jobs SET progress = 1 WHERE user_id = $1 RETURNING changed_in", user_id
            )
            await connection.execute("DELETE FROM users WHERE user_id = $1", user_id)
            return stamped, own, later
        finally:
            await connection.close()

    stamped, own, later = asyncio.run(stamps())
    assert stamped == own
    assert later > own

"""Where the events come from: another connection's commit told by NOTIFY, commits in any order,
a worker process's progress, the embedded worker's (SQLite), and the clock while no
notification can be heard."""

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from httpx import AsyncClient
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import create_engine, create_sessionmaker
from app.jobs import events
from app.models import Job, User
from tests.auth.listening import wait_until
from tests.conftest import alembic_config
from tests.factories import bearer
from tests.jobs.event_streams import EVENT_BOUND, Event, Stream, job_events, open_stream
from tests.jobs.worker_harness import Pipeline, reset
from tests.live_app import LiveApp, live_app

NEVER = 10 * EVENT_BOUND  # a poll interval no test waits out


def _dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture
async def listening(database_url: str, engine: AsyncEngine) -> AsyncIterator[LiveApp]:
    """The app with its lifespan: on PostgreSQL its listener hears other connections' commits."""
    async with live_app(database_url, engine, lifespan=True) as live:
        yield live


async def _wait_live(live: LiveApp) -> None:
    hub = live.opened.context.event_hub
    await wait_until(lambda: hub.poll_seconds is None, EVENT_BOUND, "the listener live")


async def _job(connection: asyncpg.Connection, user: User, name: str) -> int:
    job_id: int = await connection.fetchval(
        "INSERT INTO jobs (user_id, job_name, job_type, created_at, updated_at)"
        " VALUES ($1, $2, 'simple', now(), now()) RETURNING job_id",
        user.user_id,
        name,
    )
    return job_id


async def _seen_until(stream: Stream, wanted: set[int]) -> dict[int, dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    while not wanted <= seen.keys():
        seen |= job_events(await stream.batch())
    return seen


@pytest.mark.postgres_only
async def test_a_commit_by_another_connection_arrives_by_notify(
    listening: LiveApp, database_url: str
) -> None:
    user = await listening.user("notify")
    client = await listening.opened.client_over_tcp()
    await _wait_live(listening)  # no polling from here: only a notification wakes the stream
    connection = await asyncpg.connect(_dsn(database_url))
    try:
        async with open_stream(client, bearer(user, listening.settings)) as stream:
            await stream.next()
            job_id = await _job(connection, user, "from psql")
            await connection.execute("UPDATE jobs SET progress = 40 WHERE job_id = $1", job_id)
            seen = await _seen_until(stream, {job_id})
            while seen[job_id]["progress"] != 40:
                seen |= job_events(await stream.batch())
    finally:
        await connection.close()

    assert seen[job_id]["job_name"] == "from psql"


@pytest.mark.postgres_only
async def test_a_transaction_committing_after_a_later_one_is_not_missed(
    listening: LiveApp, database_url: str
) -> None:
    """Transaction ids are handed out in one order and commit in another; a stream that only
    kept the highest id it had seen would miss the first transaction's change for good."""
    user = await listening.user("order")
    client = await listening.opened.client_over_tcp()
    await _wait_live(listening)
    first, second = [await asyncpg.connect(_dsn(database_url)) for _ in range(2)]
    try:
        async with open_stream(client, bearer(user, listening.settings)) as stream:
            await stream.next()
            started_first = first.transaction()
            await started_first.start()
            early = await _job(first, user, "started first")
            async with second.transaction():
                late = await _job(second, user, "started second")
            assert set(await _seen_until(stream, {late})) == {late}

            await started_first.commit()
            assert set(await _seen_until(stream, {early})) == {early}
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres_only
async def test_concurrent_commits_are_all_reported(listening: LiveApp, database_url: str) -> None:
    """Writers commit while the stream reads: each read takes its rows and its snapshot in one
    statement, so no commit falls between the two and none goes unreported."""
    user = await listening.user("race")
    client = await listening.opened.client_over_tcp()
    await _wait_live(listening)
    writers = [await asyncpg.connect(_dsn(database_url)) for _ in range(4)]
    names = itertools.count()

    async def write(connection: asyncpg.Connection) -> list[int]:
        return [await _job(connection, user, f"race {next(names)}") for _ in range(20)]

    try:
        async with open_stream(client, bearer(user, listening.settings)) as stream:
            await stream.next()
            written = await asyncio.gather(*(write(writer) for writer in writers))
            wanted = set(itertools.chain.from_iterable(written))
            seen = await _seen_until(stream, wanted)
    finally:
        for writer in writers:
            await writer.close()

    assert set(seen) == wanted


async def test_without_notifications_a_stream_reads_every_second(
    database_url: str, engine: AsyncEngine
) -> None:
    """No listener runs here (no lifespan; on SQLite never): a commit made outside the app is
    read by the clock."""
    async with live_app(database_url, engine) as live:
        user = await live.user("clock")
        client = await live.opened.client_over_tcp()
        assert live.opened.context.event_hub.poll_seconds == events.POLL_SECONDS
        async with open_stream(client, bearer(user, live.settings)) as stream:
            await stream.next()
            async with create_sessionmaker(engine)() as session:
                session.add(Job(user_id=user.user_id, job_name="outside", job_type="simple"))
                await session.commit()
            batch = await stream.batch()

    assert [event.data["job_name"] for event in batch if event.name == "job"] == ["outside"]


def _statuses(events_seen: list[Event], job_id: int) -> list[tuple[str, int]]:
    return [
        (event.data["status"], event.data["progress"])
        for event in events_seen
        if event.name == "job" and event.data["job_id"] == job_id
    ]


async def _run_a_job_and_watch(client: AsyncClient, headers: dict[str, str]) -> list[Event]:
    async with open_stream(client, headers) as stream:
        await stream.next()
        response = await client.post(
            "/api/users/jobs",
            json={"job_name": "watched", "job_type": "simple", "parameters": {"seconds": 2.5}},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        return await stream.until(
            lambda event: event.name == "job" and event.data["status"] == "completed",
            within=30,
        )


def _assert_watched_through(seen: list[Event]) -> None:
    job_id = next(event.data["job_id"] for event in seen if event.name == "job")
    moves = _statuses(seen, job_id)
    assert moves[0] == ("pending", 0)
    assert moves[-1] == ("completed", 100)
    running = [progress for status, progress in moves if status == "running"]
    assert running, moves
    assert any(0 < progress < 100 for progress in running), moves
    assert running == sorted(running)


@pytest.mark.postgres_only
async def test_a_worker_process_progress_arrives(
    listening: LiveApp, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "POLL_SECONDS", NEVER)
    await reset(listening.engine)
    client = await listening.opened.client_over_tcp()
    pipeline = Pipeline(database_url, listening.engine, client, listening.settings, tmp_path)
    try:
        await pipeline.start_worker()
        await _wait_live(listening)
        seen = await _run_a_job_and_watch(client, await pipeline.user())
    finally:
        for worker in pipeline.workers:
            worker.kill()

    _assert_watched_through(seen)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file of its own, whatever database the suite runs on."""
    url = f"sqlite+aiosqlite:///{tmp_path}/jobs.db"
    command.upgrade(alembic_config(url), "head")
    return url


async def test_the_embedded_worker_progress_arrives(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite nothing notifies: the worker inside the API process wakes the streams after
    each of its commits. The clock is put out of reach here."""
    monkeypatch.setattr(events, "POLL_SECONDS", NEVER)
    sqlite_engine = create_engine(sqlite_url)
    try:
        async with live_app(sqlite_url, sqlite_engine, lifespan=True) as live:
            assert live.opened.context.embedded_worker is not None
            client = await live.opened.client_over_tcp()
            headers = bearer(await live.user("embedded"), live.settings)
            _assert_watched_through(await _run_a_job_and_watch(client, headers))
    finally:
        await sqlite_engine.dispose()

"""What counts as a change since a mark (JobRepository.changes_since) when the stamps come from
somewhere else than this server's own transactions."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.core.db import create_engine, create_sessionmaker
from app.jobs.repository import JobRepository

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def _add_job(connection: asyncpg.Connection, user_id: int) -> int:
    job_id: int = await connection.fetchval(
        "INSERT INTO jobs (user_id, job_name, job_type, created_at, updated_at)"
        " VALUES ($1, 'restored', 'simple', now(), now()) RETURNING job_id",
        user_id,
    )
    return job_id


async def test_a_stamp_from_a_restored_dump_is_not_a_change_until_written_here(
    database_url: str, connection: asyncpg.Connection
) -> None:
    """A dump restored on another server brings its transaction ids along, ahead of the new
    server's: read as changes, those jobs would be sent on every read of every stream."""
    user_id: int = await connection.fetchval(
        "INSERT INTO users (email, hashed_password) VALUES ($1, 'x') RETURNING user_id",
        f"restore-{uuid.uuid4().hex[:12]}@example.com",
    )
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        restored = await _add_job(connection, user_id)
        # As pg_restore --disable-triggers writes rows: the triggers do not stamp them.
        await connection.execute("SET session_replication_role = replica")
        await connection.execute(
            "UPDATE jobs SET changed_in = pg_current_xact_id()::text::bigint + 1000000000"
            " WHERE job_id = $1",
            restored,
        )
        await connection.execute("RESET session_replication_role")
        async with create_sessionmaker(engine)() as session:
            jobs = JobRepository(session)
            start = (await jobs.changes_since(user_id, None, 10)).mark
            written_here = await _add_job(connection, user_id)
            after_a_write = await jobs.changes_since(user_id, start, 10)
            await connection.execute("UPDATE jobs SET progress = 5 WHERE job_id = $1", restored)
            after_the_restored_one_moved = await jobs.changes_since(user_id, after_a_write.mark, 10)
    finally:
        await engine.dispose()
        await connection.execute("DELETE FROM users WHERE user_id = $1", user_id)

    assert [job.job_id for job in after_a_write.jobs] == [written_here]
    assert [job.job_id for job in after_the_restored_one_moved.jobs] == [restored]

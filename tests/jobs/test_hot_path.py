"""Guards for the dashboard's hot path that are not timings: conditional GET, how many SQL
statements a poll costs, and that the list query is served by the index."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app.core.config import Settings
from app.models import JobStatus
from tests.factories import bearer, create_job, create_user

URL = "/api/users/jobs"
HARNESS_STATEMENTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@asynccontextmanager
async def recorded_statements(engine: AsyncEngine) -> AsyncIterator[list[tuple[str, Any]]]:
    """The SQL the app sends, minus the test harness's own savepoints."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(HARNESS_STATEMENTS):
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_unchanged_list_answers_304_without_a_body(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    headers = bearer(user, settings)

    first = await client.get(URL, headers=headers)
    etag = first.headers["etag"]
    again = await client.get(URL, headers={**headers, "If-None-Match": etag})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert "private" in again.headers["cache-control"]
    assert "no-cache" in again.headers["cache-control"]
    assert {"Authorization", "Cookie"} <= {v.strip() for v in again.headers["vary"].split(",")}


@pytest.mark.parametrize("change", ["submit", "cancel", "admin"])
async def test_any_change_to_the_users_jobs_changes_the_etag(
    change: str, client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    admin = await create_user(session, is_admin=True)
    job = await create_job(session, user)
    headers = bearer(user, settings)
    list_etag = (await client.get(URL, headers=headers)).headers["etag"]
    stats_etag = (await client.get(f"{URL}/stats", headers=headers)).headers["etag"]

    if change == "submit":
        made = await client.post(URL, json={"job_name": "n", "job_type": "simple"}, headers=headers)
    elif change == "cancel":
        made = await client.post(f"{URL}/{job.job_id}/cancel", headers=headers)
    else:
        made = await client.patch(
            f"/api/admin/jobs/{job.job_id}",
            json={"status": "running"},
            headers=bearer(admin, settings),
        )
    assert made.status_code in (200, 201)

    listed = await client.get(URL, headers={**headers, "If-None-Match": list_etag})
    stats = await client.get(f"{URL}/stats", headers={**headers, "If-None-Match": stats_etag})
    assert listed.status_code == 200
    assert listed.headers["etag"] != list_etag
    assert stats.status_code == 200
    assert stats.headers["etag"] != stats_etag


async def test_etag_depends_on_the_filter_and_the_user(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    etag = (await client.get(URL, headers=bearer(alice, settings))).headers["etag"]

    filtered = await client.get(
        URL,
        params={"status": "pending"},
        headers={**bearer(alice, settings), "If-None-Match": etag},
    )
    other_user = await client.get(URL, headers={**bearer(bob, settings), "If-None-Match": etag})

    assert filtered.status_code == 200
    assert other_user.status_code == 200


async def test_a_poll_costs_two_statements_and_a_revalidation_one(
    client: AsyncClient, session: AsyncSession, settings: Settings, engine: AsyncEngine
) -> None:
    """The token check (the user's row and the token's revocation in one statement), then the
    page with its total, or the totals by status. With nothing remembered (here no listener
    runs) a revalidation reads the same two: its ETag is a hash of the answer. Answered from
    memory it reads nothing (tests/auth/test_change_listener.py)."""
    user = await create_user(session)
    for _ in range(5):
        await create_job(session, user)
    headers = bearer(user, settings)

    for path in (URL, f"{URL}/stats"):
        async with recorded_statements(engine) as statements:
            response = await client.get(path, headers=headers)
        assert response.status_code == 200
        assert len(statements) == 2, statements

        async with recorded_statements(engine) as statements:
            response = await client.get(
                path, headers={**headers, "If-None-Match": response.headers["etag"]}
            )
        assert response.status_code == 304
        assert len(statements) == 2, statements


def _scans_of(plan: Any, table: str) -> list[str]:
    """The node types that read `table` anywhere in an EXPLAIN (FORMAT JSON) plan."""
    found = []
    if isinstance(plan, dict):
        if plan.get("Relation Name") == table:
            found.append(f"{plan['Node Type']} using {plan.get('Index Name')}")
        for value in plan.values():
            found += _scans_of(value, table)
    elif isinstance(plan, list):
        for item in plan:
            found += _scans_of(item, table)
    return found


@pytest.mark.postgres_only
async def test_the_list_query_uses_the_index_not_a_scan_of_jobs(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    engine: AsyncEngine,
    connection: AsyncConnection,
) -> None:
    user = await create_user(session)
    others = [await create_user(session) for _ in range(20)]
    for other in others:
        await session.execute(
            text(
                "INSERT INTO jobs (user_id, job_name, job_type, status, created_at) "
                "SELECT :user_id, 'bulk', 'simple', 'completed', now() - g * interval '1 minute' "
                "FROM generate_series(1, 1000) AS g"
            ),
            {"user_id": other.user_id},
        )
    for _ in range(30):
        await create_job(session, user, status=JobStatus.RUNNING)
    await session.execute(text("ANALYZE jobs"))
    await session.commit()

    async with recorded_statements(engine) as recorded:
        first = await client.get(URL, params={"limit": 10}, headers=bearer(user, settings))
        cursor = first.json()["next_cursor"]
        await client.get(
            URL,
            params={"limit": 10, "cursor": cursor, "status": ["running", "pending"]},
            headers=bearer(user, settings),
        )
        await client.get(f"{URL}/stats", headers=bearer(user, settings))
    statements = [(sql, args) for sql, args in recorded if "jobs" in sql.split("FROM", 1)[-1]]
    assert len(statements) == 3, recorded

    driver = (await connection.get_raw_connection()).driver_connection
    for sql, args in statements:
        plan = await driver.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        if isinstance(plan, str):  # SQLAlchemy registers a json codec on its connections
            plan = json.loads(plan)
        scans = _scans_of(plan, "jobs")
        assert scans, plan
        # Either index that starts with user_id, alone: the count may walk the narrower one.
        assert all(scan.startswith("Index Only Scan using ix_jobs_user_id_") for scan in scans), (
            scans
        )

"""GET /api/users/jobs/events, as a dashboard sees it: the totals on opening, each change to the
caller's own jobs as a `job` event closed by new totals, a replay after a reconnection, a
resync when the replay cannot be trusted, a cap on open streams."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import create_sessionmaker, is_sqlite
from app.models import Job
from tests.factories import bearer
from tests.jobs.event_streams import EVENTS, JOB_KEYS, job_events, open_stream
from tests.live_app import LiveApp, live_app

JOBS = "/api/users/jobs"
STREAMS_PER_USER = 3


@pytest.fixture
async def live(database_url: str, engine: AsyncEngine) -> AsyncIterator[LiveApp]:
    async with live_app(database_url, engine, event_streams_per_user=STREAMS_PER_USER) as live:
        yield live


@pytest.fixture
async def client(live: LiveApp) -> AsyncClient:
    return await live.opened.client_over_tcp()


async def _headers(live: LiveApp, prefix: str = "events", **attributes: Any) -> dict[str, str]:
    return bearer(await live.user(prefix, **attributes), live.settings)


async def _submit(client: AsyncClient, headers: dict[str, str], name: str = "a job") -> int:
    response = await client.post(
        JOBS, json={"job_name": name, "job_type": "simple"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["job"]["job_id"])


async def test_without_credentials_it_is_401_with_the_usual_json(client: AsyncClient) -> None:
    response = await client.get(EVENTS)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required", "success": False}

    response = await client.get(EVENTS, headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json()["success"] is False


async def test_it_opens_with_the_totals_unbuffered(live: LiveApp, client: AsyncClient) -> None:
    headers = await _headers(live)
    await _submit(client, headers)

    async with open_stream(client, headers) as stream:
        response = stream.source.response
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        assert "private" in response.headers["cache-control"]
        first = await stream.next()

    assert first.name == "stats"
    assert first.data == {
        "total": 1,
        "pending": 1,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert first.id


async def test_a_submitted_job_arrives_as_the_list_shows_it_then_the_new_totals(
    live: LiveApp, client: AsyncClient
) -> None:
    headers = await _headers(live)
    async with open_stream(client, headers) as stream:
        opening = await stream.next()
        job_id = await _submit(client, headers, "pushed")
        job, stats = await stream.batch()

    listed = (await client.get(JOBS, headers=headers)).json()["jobs"][0]
    assert job.name == "job"
    assert list(job.data) == JOB_KEYS
    assert job.data == {**listed, "progress": 0, "progress_message": None}
    assert job.data["job_id"] == job_id
    # A client cut off before the totals replays the whole batch: the job carries the mark
    # the batch started from, the totals the new one.
    assert job.id == opening.id
    assert stats.data["total"] == stats.data["pending"] == 1
    assert stats.id != opening.id


async def test_a_status_change_by_an_admin_arrives(live: LiveApp, client: AsyncClient) -> None:
    headers = await _headers(live)
    admin = await _headers(live, "admin", is_admin=True)
    job_id = await _submit(client, headers)

    async with open_stream(client, headers) as stream:
        await stream.next()
        response = await client.patch(
            f"/api/admin/jobs/{job_id}", json={"status": "cancelled"}, headers=admin
        )
        assert response.status_code == 200, response.text
        batch = await stream.batch()

    assert job_events(batch)[job_id]["status"] == "cancelled"
    assert batch[-1].data["cancelled"] == 1


async def test_reconnecting_with_the_last_event_id_replays_what_changed_meanwhile(
    live: LiveApp, client: AsyncClient
) -> None:
    headers = await _headers(live)
    untouched = await _submit(client, headers, "before")
    async with open_stream(client, headers) as stream:
        last_id = (await stream.next()).id

    created = await _submit(client, headers, "while away")
    cancelled = await _submit(client, headers, "cancelled while away")
    response = await client.post(f"{JOBS}/{cancelled}/cancel", headers=headers)
    assert response.status_code == 200, response.text

    async with open_stream(client, headers, last_event_id=last_id) as stream:
        batch = await stream.batch()

    replayed = job_events(batch)
    assert set(replayed) == {created, cancelled}
    assert untouched not in replayed
    assert replayed[cancelled]["status"] == "cancelled"
    assert all(event.id == last_id for event in batch[:-1])
    assert batch[-1].data["total"] == 3


GARBAGE_IDS = [
    "garbage",
    "",  # an empty id is no id: the stream opens afresh, below
    "pg:",
    "pg:5:3:",  # xmin past xmax
    "pg:1:10:12",  # in progress past xmax
    "pg:1:10:5,4",  # out of order
    "pg:01:10:",  # not as we write numbers
    "pg:4294967296:4294967297:",  # not a transaction id (its low 32 bits are 0)
    "pg:1:" + "9" * 30 + ":",
    "pg:1:2:" + ",".join(["1"] * 5000),
    "sqlite:",
    "sqlite:-1",
    "sqlite:" + "9" * 30,
    "sqlite:1,2",
    "\u00e9t\u00e9".encode(),  # as a browser sends an id it was given in UTF-8
]


@pytest.mark.parametrize("last_id", GARBAGE_IDS)
async def test_an_id_that_is_not_ours_gets_a_resync_then_the_stream_goes_on(
    live: LiveApp, client: AsyncClient, last_id: str | bytes
) -> None:
    headers = await _headers(live)
    async with open_stream(client, headers, last_event_id=last_id) as stream:
        first = await stream.next()
        if last_id:
            assert (first.name, first.data) == ("resync", {})
            first = await stream.next()
        assert first.name == "stats"
        job_id = await _submit(client, headers)
        assert job_id in job_events(await stream.batch())


async def test_an_id_of_the_other_kind_of_database_gets_a_resync(
    live: LiveApp, client: AsyncClient
) -> None:
    other_kind = "pg:1:2:" if is_sqlite(live.settings.database_url) else "sqlite:1"
    headers = await _headers(live)
    async with open_stream(client, headers, last_event_id=other_kind) as stream:
        assert (await stream.next()).name == "resync"


async def test_an_id_from_the_future_gets_a_resync(live: LiveApp, client: AsyncClient) -> None:
    """As after the database was restored from a backup older than the client's last event."""
    far = 2**62 + 1
    future = f"sqlite:{far}" if is_sqlite(live.settings.database_url) else f"pg:{far}:{far}:"
    headers = await _headers(live)
    async with open_stream(client, headers, last_event_id=future) as stream:
        resync, stats = await stream.next(), await stream.next()

    assert resync.name == "resync"
    assert stats.name == "stats"
    assert resync.id == stats.id != future


async def test_more_changes_than_a_batch_holds_get_a_resync(
    live: LiveApp, client: AsyncClient
) -> None:
    user = await live.user("events")
    headers = bearer(user, live.settings)
    async with open_stream(client, headers) as stream:
        last_id = (await stream.next()).id
    async with create_sessionmaker(live.engine)() as session:
        session.add_all(
            Job(user_id=user.user_id, job_name="bulk", job_type="simple") for _ in range(101)
        )
        await session.commit()

    async with open_stream(client, headers, last_event_id=last_id) as stream:
        resync, stats = await stream.next(), await stream.next()

    assert resync.name == "resync"
    assert stats.data["total"] == 101


async def test_a_caller_only_ever_receives_their_own_jobs(
    live: LiveApp, client: AsyncClient
) -> None:
    alice, bob = await _headers(live, "alice"), await _headers(live, "bob")
    async with open_stream(client, alice) as alices, open_stream(client, bob) as bobs:
        await alices.next()
        await bobs.next()
        alices_job = await _submit(client, alice)
        bobs_job = await _submit(client, bob)
        # Bob's first batch after both submits holds his job and not Alice's.
        bobs_batch = await bobs.batch()
        alices_batch = await alices.batch()

    assert set(job_events(bobs_batch)) == {bobs_job}
    assert set(job_events(alices_batch)) == {alices_job}
    assert bobs_batch[-1].data["total"] == alices_batch[-1].data["total"] == 1


async def test_past_the_cap_a_stream_is_refused_until_one_closes(
    live: LiveApp, client: AsyncClient
) -> None:
    headers = await _headers(live)
    async with open_stream(client, headers) as first:
        await first.next()
        async with open_stream(client, headers) as second, open_stream(client, headers) as third:
            await second.next()
            await third.next()
            refused = await client.get(EVENTS, headers=headers)
            assert refused.status_code == 429
            assert refused.json()["success"] is False
            assert "at most 3" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0
            # Another user is not counted against this one.
            async with open_stream(client, await _headers(live, "other")) as others:
                assert (await others.next()).name == "stats"
        # Two closed: two may open again.
        async with open_stream(client, headers) as again:
            assert (await again.next()).name == "stats"

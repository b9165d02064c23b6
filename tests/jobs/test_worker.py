"""Jobs run by real worker processes (`python -m app worker`) on PostgreSQL: the lifecycle as
a user sees it through the API, and what the engine guarantees when things go wrong."""

import asyncio
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from app.core.db import is_sqlite
from app.jobs import service
from app.jobs.engine import create_engine_app
from tests.conftest import alembic_config
from tests.jobs.worker_harness import (
    FAST_RECOVERY,
    TERMINAL,
    Pipeline,
    pipeline,
    unique_request_id,
)
from tests.ops.conftest import _recreate_database
from tests.ops.servers import free_port
from tests.tcp_proxy import REFUSE, TcpProxy

pytestmark = pytest.mark.postgres_only

# The worker's line for a recorded completion (app/jobs/runner.py), and the job it names.
COMPLETED_LINE = re.compile(r"job completed\b.*\bjob_id=(\d+)\b")


@pytest.fixture(scope="session")
def workers_database_url(database_url: str) -> Iterator[str]:
    """A database of its own (named after the suite's), committed to by API and workers."""
    if is_sqlite(database_url):
        pytest.fail("worker tests need PostgreSQL: mark them postgres_only")
    url = make_url(database_url)
    name = f"{url.database}_workers"
    maintenance = url.set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(_recreate_database(maintenance, name, create=True))
    workers_url = url.set(database=name).render_as_string(hide_password=False)
    command.upgrade(alembic_config(workers_url), "head")
    try:
        yield workers_url
    finally:
        asyncio.run(_recreate_database(maintenance, name, create=False))


@pytest.fixture
async def jobs(workers_database_url: str, tmp_path: Path) -> AsyncIterator[Pipeline]:
    async with pipeline(workers_database_url, tmp_path) as running:
        yield running


async def test_a_submitted_job_runs_to_completed_with_its_run_shown(jobs: Pipeline) -> None:
    owner = await jobs.user()
    request_id = unique_request_id()
    await jobs.start_worker()

    job_id = await jobs.submit(owner, request_id=request_id, seconds=1.2)
    running = await jobs.wait_for(owner, job_id, {"running", "completed"})
    done = await jobs.wait_for(owner, job_id, TERMINAL)

    assert running["started_at"] is not None
    assert done["status"] == "completed"
    assert done["result"] == {"slept": 1.2}
    assert (done["attempts"], done["progress"], done["error"]) == (1, 100, None)
    assert done["started_at"] <= done["finished_at"]
    listed = (await jobs.client.get("/api/users/jobs", headers=owner)).json()["jobs"]
    assert [(item["job_id"], item["status"]) for item in listed] == [(job_id, "completed")]
    stats = (await jobs.client.get("/api/users/jobs/stats", headers=owner)).json()["stats"]
    assert (stats["completed"], stats["running"], stats["pending"]) == (1, 0, 0)
    # The worker's lines about the job carry the job's id and the submit's request id.
    [worker] = jobs.workers
    lines = [line for line in worker.log().splitlines() if f"job_id={job_id} " in line + " "]
    assert any("job started" in line for line in lines)
    assert all(f"[{request_id}]" in line for line in lines)


async def test_progress_is_reported_while_it_runs(jobs: Pipeline) -> None:
    owner = await jobs.user()
    await jobs.start_worker()

    job_id = await jobs.submit(owner, seconds=3)
    deadline = time.monotonic() + 10
    seen: set[int] = set()
    while (job := await jobs.job(owner, job_id))["status"] != "completed":
        assert time.monotonic() < deadline
        if job["status"] == "running":
            seen.add(job["progress"])
        await asyncio.sleep(0.1)

    assert any(0 < progress < 100 for progress in seen), seen


async def test_a_failing_job_is_retried_then_failed_with_its_error(jobs: Pipeline) -> None:
    owner = await jobs.user()
    await jobs.start_worker()

    job_id = await jobs.submit(owner, seconds=0, fail=True)
    done = await jobs.wait_for(owner, job_id, TERMINAL)

    assert done["status"] == "failed"
    assert done["attempts"] == 3  # simple's retry policy: three attempts in all
    assert "failed as asked" in done["error"]
    assert done["finished_at"] is not None
    assert await jobs.work_statuses(job_id) == ["failed"]


async def test_a_job_cancelled_while_pending_never_runs(jobs: Pipeline) -> None:
    owner = await jobs.user()
    job_id = await jobs.submit(owner, seconds=0)
    cancelled = await jobs.client.post(f"/api/users/jobs/{job_id}/cancel", headers=owner)
    assert cancelled.status_code == 200

    await jobs.start_worker()
    # A job submitted after it runs to the end: the worker has been through the queue.
    later = await jobs.submit(owner, seconds=0)
    await jobs.wait_for(owner, later, {"completed"})

    job = await jobs.job(owner, job_id)
    assert (job["status"], job["attempts"], job["started_at"]) == ("cancelled", 0, None)
    assert await jobs.work_statuses(job_id) == ["cancelled"]


async def test_cancelling_a_running_job_stops_its_handler_within_a_second(
    jobs: Pipeline,
) -> None:
    owner = await jobs.user()
    await jobs.start_worker()
    job_id = await jobs.submit(owner, seconds=60)
    await jobs.wait_for(owner, job_id, {"running"})

    asked = time.monotonic()
    response = await jobs.client.post(f"/api/users/jobs/{job_id}/cancel", headers=owner)
    assert response.status_code == 200
    # The engine records the handler's end ("aborted") once its task has stopped.
    while await jobs.work_statuses(job_id) != ["aborted"]:
        assert time.monotonic() - asked < 1.0, await jobs.work_statuses(job_id)
        await asyncio.sleep(0.02)

    before = await jobs.job(owner, job_id)
    await asyncio.sleep(1.5)  # the handler would report progress every second
    after = await jobs.job(owner, job_id)
    assert before["status"] == after["status"] == "cancelled"
    assert after == before


async def test_a_worker_killed_mid_job_leaves_it_to_another(jobs: Pipeline) -> None:
    owner = await jobs.user()
    first = await jobs.start_worker("first", **FAST_RECOVERY)
    job_id = await jobs.submit(owner, seconds=3)
    await jobs.wait_for(owner, job_id, {"running"})

    first.kill()  # SIGKILL: no goodbye, its heartbeat just stops
    killed = time.monotonic()
    await jobs.start_worker("second", **FAST_RECOVERY)
    done = await jobs.wait_for(owner, job_id, TERMINAL, within=30)

    assert done["status"] == "completed"
    assert done["attempts"] == 2
    # Stalled after 2 s, checked every 1 s, then a 3 s run: well within 15 s.
    assert time.monotonic() - killed < 15


async def test_a_job_whose_workers_keep_dying_fails_with_a_clear_error(jobs: Pipeline) -> None:
    owner = await jobs.user()
    job_id = await jobs.submit(owner, seconds=60)
    for attempt in range(1, 4):
        worker = await jobs.start_worker(f"doomed-{attempt}", **FAST_RECOVERY)
        deadline = time.monotonic() + 20
        while (await jobs.job(owner, job_id))["attempts"] < attempt:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        worker.kill()

    await jobs.start_worker("last", **FAST_RECOVERY)
    done = await jobs.wait_for(owner, job_id, TERMINAL, within=20)

    assert done["status"] == "failed"
    assert done["attempts"] == 3
    assert "stopped responding" in done["error"]


async def test_sigterm_lets_a_short_job_finish_and_puts_a_long_one_back(jobs: Pipeline) -> None:
    owner = await jobs.user()
    worker = await jobs.start_worker("graceful", WORKER_SHUTDOWN_GRACE_SECONDS="2")
    short = await jobs.submit(owner, seconds=1)
    long = await jobs.submit(owner, seconds=8)
    await jobs.wait_for(owner, short, {"running"})
    await jobs.wait_for(owner, long, {"running"})

    worker.terminate()
    assert worker.process.wait(timeout=15) == 0

    assert (await jobs.job(owner, short))["status"] == "completed"
    interrupted = await jobs.job(owner, long)
    assert interrupted["status"] == "running"
    assert await jobs.work_statuses(long) == ["todo"]
    await jobs.start_worker("next")
    done = await jobs.wait_for(owner, long, TERMINAL, within=20)
    assert done["status"] == "completed"
    assert done["attempts"] == 1  # the interrupted run did not count


async def test_two_workers_run_500_jobs_each_recorded_once(jobs: Pipeline) -> None:
    owners = [await jobs.user() for _ in range(5)]
    for owner in owners:
        for _ in range(2):
            await asyncio.gather(*(jobs.submit(owner, seconds=0) for _ in range(50)))
    await jobs.start_worker("one")
    await jobs.start_worker("two")

    deadline = time.monotonic() + 120
    while await jobs.scalar("SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)

    outcomes = await jobs.rows("SELECT status, attempts, count(*) FROM jobs GROUP BY 1, 2")
    assert [tuple(row) for row in outcomes] == [("completed", 1, 500)]
    work = await jobs.rows(
        "SELECT status, count(*), count(DISTINCT queueing_lock) FROM procrastinate_jobs "
        "WHERE queueing_lock LIKE 'job-%' GROUP BY status"
    )
    assert [tuple(row) for row in work] == [("succeeded", 500, 500)]
    # Each completion was recorded once: a second run's completion would have been dropped
    # (and logged so), not recorded again.
    logs = {worker.name: worker.log() for worker in jobs.workers}
    completed = Counter(
        int(job_id) for log in logs.values() for job_id in COMPLETED_LINE.findall(log)
    )
    all_ids = {job_id for (job_id,) in await jobs.rows("SELECT job_id FROM jobs")}
    assert set(completed) == all_ids
    assert set(completed.values()) == {1}
    assert not any("job dropped" in log for log in logs.values())
    assert [name for name, log in logs.items() if COMPLETED_LINE.search(log)] == ["one", "two"]


async def test_a_submit_whose_transaction_rolls_back_leaves_nothing_queued(
    jobs: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await jobs.user()

    def fail_after_the_enqueue(*_args: object) -> None:
        raise RuntimeError("the submit fails between queueing its work and committing")

    # The submit's last step, after the job row and its work were written.
    monkeypatch.setattr(service, "count_submitted_job", fail_after_the_enqueue)
    response = await jobs.client.post(
        "/api/users/jobs", json={"job_name": "lost", "job_type": "simple"}, headers=owner
    )
    monkeypatch.undo()

    assert response.status_code == 500
    assert await jobs.scalar("SELECT count(*) FROM jobs") == 0
    assert await jobs.scalar("SELECT count(*) FROM procrastinate_jobs") == 0


async def test_workers_ride_out_a_database_outage_and_lose_no_job(jobs: Pipeline) -> None:
    url = make_url(jobs.database_url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        owner = await jobs.user()
        ids = [await jobs.submit(owner, seconds=1) for _ in range(20)]
        worker = await jobs.start_worker("cut-off", database_url=proxied, **FAST_RECOVERY)
        await jobs.wait_for(owner, ids[0], {"running", "completed"})

        await proxy.cut(REFUSE)
        await asyncio.sleep(4)
        await proxy.restore()

        deadline = time.monotonic() + 60
        while await jobs.scalar("SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"):
            assert time.monotonic() < deadline, worker.log()[-3000:]
            await asyncio.sleep(0.2)

    statuses = [(await jobs.job(owner, job_id))["status"] for job_id in ids]
    assert statuses == ["completed"] * 20
    assert worker.process.poll() is None  # the same process, reconnected
    assert "lost the database" in worker.log()


async def test_finished_work_is_forgotten_after_the_keep_period_and_jobs_keep_their_outcome(
    jobs: Pipeline,
) -> None:
    owner = await jobs.user()
    await jobs.start_worker()
    old, recent = await jobs.submit(owner, seconds=0), await jobs.submit(owner, seconds=0)
    await jobs.wait_for(owner, old, {"completed"})
    await jobs.wait_for(owner, recent, {"completed"})
    await jobs.execute(
        "UPDATE procrastinate_events SET at = at - interval '25 hours' "
        "WHERE job_id IN (SELECT id FROM procrastinate_jobs WHERE queueing_lock = :key)",
        key=f"job-{old}",
    )

    # The hourly task, run now (WORKER_KEEP_FINISHED_HOURS defaults to 24).
    engine = create_engine_app(jobs.settings)
    async with engine.open_async():
        await engine.tasks["jobs.remove_finished_work"](timestamp=0)

    assert await jobs.work_statuses(old) == []
    assert await jobs.work_statuses(recent) == ["succeeded"]
    assert (await jobs.job(owner, old))["status"] == "completed"


async def test_the_worker_serves_durations_by_type_and_outcome_and_the_queue_depth(
    jobs: Pipeline,
) -> None:
    port = free_port()
    owner = await jobs.user()
    await jobs.start_worker(WORKER_METRICS_PORT=str(port))
    done = await jobs.submit(owner, seconds=0)
    failed = await jobs.submit(owner, seconds=0, fail=True)
    await jobs.wait_for(owner, done, TERMINAL)
    await jobs.wait_for(owner, failed, TERMINAL)

    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text

    assert 'job_run_duration_seconds_count{job_type="simple",outcome="completed"} 1.0' in text
    assert 'job_run_duration_seconds_count{job_type="simple",outcome="retried"} 2.0' in text
    assert 'job_run_duration_seconds_count{job_type="simple",outcome="failed"} 1.0' in text
    assert 'job_queue_depth{job_type="simple"} 0.0' in text

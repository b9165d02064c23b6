"""GET /api/admin/jobs (everyone's jobs, filtered, keyset-paginated) and POST
/api/admin/jobs/{id}/retry; how an admin's hand stays consistent with the engine's queue."""

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import JobStatus
from tests.factories import bearer, create_job, create_user

ADMIN_URL = "/api/admin/jobs"


async def test_an_admin_lists_everyones_jobs_newest_first_page_by_page(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)
    alice, bob = await create_user(session), await create_user(session)
    made = [await create_job(session, owner) for owner in (alice, bob, alice, bob, alice)]
    headers = bearer(admin, settings)

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(ADMIN_URL, params=params, headers=headers)).json()
        seen += [job["job_id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    ours = {job.job_id for job in made}
    assert [job_id for job_id in seen if job_id in ours] == [job.job_id for job in reversed(made)]


async def test_filters_by_status_and_owner(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)
    alice, bob = await create_user(session), await create_user(session)
    failed = await create_job(session, alice, status=JobStatus.FAILED)
    await create_job(session, alice, status=JobStatus.COMPLETED)
    await create_job(session, bob, status=JobStatus.FAILED)

    response = await client.get(
        ADMIN_URL,
        params={"status": "failed", "user_id": alice.user_id},
        headers=bearer(admin, settings),
    )

    assert response.status_code == 200
    assert [job["job_id"] for job in response.json()["jobs"]] == [failed.job_id]
    assert response.json()["jobs"][0]["error"] is None


@pytest.mark.parametrize(
    "params",
    [{"status": "done"}, {"user_id": "0"}, {"limit": "0"}, {"limit": "1001"}],
    ids=["unknown-status", "user-0", "limit-0", "limit-1001"],
)
async def test_bad_filters_are_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, params: dict[str, str]
) -> None:
    admin = await create_user(session, is_admin=True)

    response = await client.get(ADMIN_URL, params=params, headers=bearer(admin, settings))

    assert response.status_code == 422


async def test_a_bad_cursor_is_400(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)

    response = await client.get(
        ADMIN_URL, params={"cursor": "nonsense"}, headers=bearer(admin, settings)
    )

    assert response.status_code == 400


async def test_a_user_may_not_list_everyones_jobs(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    assert (await client.get(ADMIN_URL, headers=bearer(user, settings))).status_code == 403
    assert (await client.get(ADMIN_URL)).status_code == 401


async def test_retrying_a_failed_job_makes_it_pending_afresh(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)
    owner = await create_user(session)
    job = await create_job(session, owner, status=JobStatus.FAILED)

    response = await client.post(f"{ADMIN_URL}/{job.job_id}/retry", headers=bearer(admin, settings))

    assert response.status_code == 200
    retried = response.json()["job"]
    assert retried["status"] == "pending"
    assert (retried["attempts"], retried["error"], retried["finished_at"]) == (0, None, None)
    seen = await client.get(f"/api/users/jobs/{job.job_id}", headers=bearer(owner, settings))
    assert seen.json()["job"]["status"] == "pending"


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETED])
async def test_only_a_failed_job_can_be_retried(
    client: AsyncClient, session: AsyncSession, settings: Settings, status: JobStatus
) -> None:
    admin = await create_user(session, is_admin=True)
    job = await create_job(session, await create_user(session), status=status)

    response = await client.post(f"{ADMIN_URL}/{job.job_id}/retry", headers=bearer(admin, settings))

    assert response.status_code == 409


# --- the engine's queue follows the admin's hand (PostgreSQL, where the queue is a table) ----


async def _work(session: AsyncSession, job_id: int) -> list[str]:
    rows = await session.execute(
        text("SELECT status FROM procrastinate_jobs WHERE queueing_lock = :key ORDER BY id"),
        {"key": f"job-{job_id}"},
    )
    return [str(status) for (status,) in rows]


@pytest.mark.postgres_only
async def test_a_retry_queues_the_job_again(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)
    job = await create_job(session, await create_user(session), status=JobStatus.FAILED)

    await client.post(f"{ADMIN_URL}/{job.job_id}/retry", headers=bearer(admin, settings))

    assert await _work(session, job.job_id) == ["todo"]


@pytest.mark.postgres_only
@pytest.mark.parametrize("new", ["cancelled", "running"])
async def test_a_pending_job_moved_by_hand_leaves_no_work_to_run_it(
    client: AsyncClient, session: AsyncSession, settings: Settings, new: str
) -> None:
    admin = await create_user(session, is_admin=True)
    owner = await create_user(session)
    submitted = await client.post(
        "/api/users/jobs",
        json={"job_name": "n", "job_type": "simple"},
        headers=bearer(owner, settings),
    )
    job_id = submitted.json()["job"]["job_id"]
    assert await _work(session, job_id) == ["todo"]

    moved = await client.patch(
        f"{ADMIN_URL}/{job_id}", json={"status": new}, headers=bearer(admin, settings)
    )

    assert moved.status_code == 200
    assert await _work(session, job_id) == ["cancelled"]

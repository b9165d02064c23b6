from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import JobStatus
from tests.factories import bearer, create_job, create_user

URL = "/api/users/jobs/stats"


async def test_counts_the_callers_jobs_per_status(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    alices = {
        JobStatus.PENDING: 2,
        JobStatus.RUNNING: 1,
        JobStatus.COMPLETED: 3,
        JobStatus.FAILED: 0,
        JobStatus.CANCELLED: 1,
    }
    for status, count in alices.items():
        for _ in range(count):
            await create_job(session, alice, status=status)
    # Bob's jobs, in every status, must not show up in Alice's numbers.
    for status in JobStatus:
        await create_job(session, bob, status=status)

    response = await client.get(URL, headers=bearer(alice, settings))

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["message"] == "Job statistics fetched successfully"
    assert body["stats"] == {
        "total": sum(alices.values()),
        **{status.value: count for status, count in alices.items()},
    }


async def test_a_user_without_jobs_gets_zeros(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    await create_job(session, await create_user(session))

    response = await client.get(URL, headers=bearer(user, settings))

    assert response.status_code == 200
    assert response.json()["stats"] == {
        "total": 0,
        "pending": 0,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }


async def test_stats_follow_a_submitted_and_a_cancelled_job(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)
    submitted = await client.post(
        "/api/users/jobs", json={"job_name": "n", "job_type": "simple"}, headers=headers
    )
    await client.post(
        "/api/users/jobs", json={"job_name": "m", "job_type": "simple"}, headers=headers
    )

    await client.post(
        f"/api/users/jobs/{submitted.json()['job']['job_id']}/cancel", headers=headers
    )
    stats = (await client.get(URL, headers=headers)).json()["stats"]

    assert stats["total"] == 2
    assert stats["pending"] == 1
    assert stats["cancelled"] == 1


async def test_stats_without_credentials_are_401(client: AsyncClient) -> None:
    response = await client.get(URL)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"

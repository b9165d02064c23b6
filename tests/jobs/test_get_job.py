import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import bearer, create_job, create_user

URL = "/api/users/jobs"
NO_SUCH_JOB = 2**63 - 1


async def test_returns_the_users_own_job_with_parameters(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    job = await create_job(
        session, user, job_name="crunch", job_type="batch", parameters={"size": 3}
    )

    response = await client.get(f"{URL}/{job.job_id}", headers=bearer(user, settings))

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Job fetched successfully"
    assert body["success"] is True
    assert body["job"]["job_id"] == job.job_id
    assert body["job"]["job_name"] == "crunch"
    assert body["job"]["job_type"] == "batch"
    assert body["job"]["status"] == "pending"
    assert body["job"]["user_id"] == user.user_id
    assert body["job"]["parameters"] == {"size": 3}


async def test_another_users_job_looks_exactly_like_a_missing_one(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    alices_job = await create_job(session, alice)

    someone_elses = await client.get(f"{URL}/{alices_job.job_id}", headers=bearer(bob, settings))
    missing = await client.get(f"{URL}/{NO_SUCH_JOB}", headers=bearer(bob, settings))

    assert someone_elses.status_code == missing.status_code == 404
    assert someone_elses.json() == missing.json() == {"detail": "Job not found", "success": False}


@pytest.mark.parametrize("job_id", ["0", "-1", str(2**63), "abc", "1.5"])
async def test_ids_out_of_range_are_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, job_id: str
) -> None:
    user = await create_user(session)

    response = await client.get(f"{URL}/{job_id}", headers=bearer(user, settings))

    assert response.status_code == 422
    assert response.json()["success"] is False
    assert ["path", "job_id"] in [error["loc"] for error in response.json()["detail"]]


async def test_without_credentials_is_401(client: AsyncClient, session: AsyncSession) -> None:
    user = await create_user(session)
    job = await create_job(session, user)

    response = await client.get(f"{URL}/{job.job_id}")

    assert response.status_code == 401

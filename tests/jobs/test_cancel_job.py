from datetime import datetime

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import JobStatus
from tests.factories import bearer, create_job, create_user

URL = "/api/users/jobs"


@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.RUNNING])
async def test_a_pending_or_running_job_can_be_cancelled(
    client: AsyncClient, session: AsyncSession, settings: Settings, status: JobStatus
) -> None:
    user = await create_user(session)
    job = await create_job(session, user, status=status)
    before = (await client.get(f"{URL}/{job.job_id}", headers=bearer(user, settings))).json()

    response = await client.post(f"{URL}/{job.job_id}/cancel", headers=bearer(user, settings))

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Job cancelled successfully"
    assert body["success"] is True
    assert body["job"]["job_id"] == job.job_id
    assert body["job"]["status"] == "cancelled"
    after = (await client.get(f"{URL}/{job.job_id}", headers=bearer(user, settings))).json()
    assert after["job"]["status"] == "cancelled"
    assert datetime.fromisoformat(after["job"]["updated_at"]) > datetime.fromisoformat(
        before["job"]["updated_at"]
    )


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED])
async def test_a_finished_job_cannot_be_cancelled(
    client: AsyncClient, session: AsyncSession, settings: Settings, status: JobStatus
) -> None:
    user = await create_user(session)
    job = await create_job(session, user, status=status)

    response = await client.post(f"{URL}/{job.job_id}/cancel", headers=bearer(user, settings))

    assert response.status_code == 409
    assert response.json()["success"] is False
    assert isinstance(response.json()["detail"], str)
    after = (await client.get(f"{URL}/{job.job_id}", headers=bearer(user, settings))).json()
    assert after["job"]["status"] == status.value


async def test_someone_elses_job_cannot_be_cancelled(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_user(session)
    intruder = await create_user(session)
    job = await create_job(session, owner)

    response = await client.post(f"{URL}/{job.job_id}/cancel", headers=bearer(intruder, settings))
    missing = await client.post(f"{URL}/{2**63 - 1}/cancel", headers=bearer(intruder, settings))

    assert response.status_code == 404
    assert response.json() == missing.json() == {"detail": "Job not found", "success": False}
    owners_view = (await client.get(f"{URL}/{job.job_id}", headers=bearer(owner, settings))).json()
    assert owners_view["job"]["status"] == "pending"


async def test_cancelling_without_credentials_is_401(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    job = await create_job(session, user)

    response = await client.post(f"{URL}/{job.job_id}/cancel")

    assert response.status_code == 401
    status = (await client.get(f"{URL}/{job.job_id}", headers=bearer(user, settings))).json()
    assert status["job"]["status"] == "pending"

"""PATCH /api/admin/jobs/{id}: the job lifecycle, as admins drive it by hand."""

from datetime import datetime
from itertools import product
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import Job, JobStatus, User
from tests.factories import bearer, create_job, create_user

ADMIN_URL = "/api/admin/jobs"
JOBS_URL = "/api/users/jobs"

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = (
    JobStatus.PENDING,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
)
ALLOWED = [
    (PENDING, RUNNING),
    (PENDING, CANCELLED),
    (RUNNING, COMPLETED),
    (RUNNING, FAILED),
    (RUNNING, CANCELLED),
    (FAILED, PENDING),  # a retry
]
# Everything else: staying put, anything out of completed or cancelled.
DISALLOWED = [move for move in product(JobStatus, repeat=2) if move not in ALLOWED]


def _id(move: tuple[JobStatus, JobStatus]) -> str:
    return f"{move[0].value}->{move[1].value}"


async def _admin_moves(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    *,
    current: JobStatus,
    new: JobStatus,
) -> tuple[User, Job, dict[str, Any], Response]:
    """An admin asks to move a fresh `current` job of another user to `new`; returns the owner,
    the job, how the owner saw it before, and the admin's answer."""
    admin = await create_user(session, is_admin=True)
    owner = await create_user(session)
    job = await create_job(session, owner, status=current)
    before = await _owners_view(client, owner, job, settings)
    response = await client.patch(
        f"{ADMIN_URL}/{job.job_id}", json={"status": new.value}, headers=bearer(admin, settings)
    )
    return owner, job, before, response


async def _owners_view(
    client: AsyncClient, owner: User, job: Job, settings: Settings
) -> dict[str, Any]:
    listed = (await client.get(JOBS_URL, headers=bearer(owner, settings))).json()["jobs"]
    [item] = [item for item in listed if item["job_id"] == job.job_id]
    return item


@pytest.mark.parametrize(("current", "new"), ALLOWED, ids=[_id(move) for move in ALLOWED])
async def test_allowed_moves_show_in_the_owners_list(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    current: JobStatus,
    new: JobStatus,
) -> None:
    owner, job, before, response = await _admin_moves(
        client, session, settings, current=current, new=new
    )

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["job"]["job_id"] == job.job_id
    assert body["job"]["status"] == new.value
    assert body["job"]["user_id"] == owner.user_id
    after = await _owners_view(client, owner, job, settings)
    assert after["status"] == new.value
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] != before["updated_at"]
    assert datetime.fromisoformat(after["updated_at"]) > datetime.fromisoformat(
        before["updated_at"]
    )
    assert datetime.fromisoformat(after["updated_at"]) >= datetime.fromisoformat(
        after["created_at"]
    )


@pytest.mark.parametrize(("current", "new"), DISALLOWED, ids=[_id(move) for move in DISALLOWED])
async def test_disallowed_moves_are_409_and_change_nothing(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    current: JobStatus,
    new: JobStatus,
) -> None:
    owner, job, before, response = await _admin_moves(
        client, session, settings, current=current, new=new
    )

    assert response.status_code == 409
    assert response.json()["success"] is False
    assert isinstance(response.json()["detail"], str)
    assert await _owners_view(client, owner, job, settings) == before


async def test_a_non_admin_gets_403_even_for_their_own_job(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_user(session)
    job = await create_job(session, owner)

    response = await client.patch(
        f"{ADMIN_URL}/{job.job_id}", json={"status": "running"}, headers=bearer(owner, settings)
    )

    assert response.status_code == 403
    assert response.json() == {"detail": "Admin privileges required", "success": False}
    assert (await _owners_view(client, owner, job, settings))["status"] == "pending"


async def test_without_credentials_is_401(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    owner = await create_user(session)
    job = await create_job(session, owner)

    response = await client.patch(f"{ADMIN_URL}/{job.job_id}", json={"status": "running"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["success"] is False
    assert (await _owners_view(client, owner, job, settings))["status"] == "pending"


async def test_an_unknown_job_is_404(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)

    response = await client.patch(
        f"{ADMIN_URL}/{2**63 - 1}", json={"status": "running"}, headers=bearer(admin, settings)
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Job not found", "success": False}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"status": "done"}, id="unknown"),
        pytest.param({"status": "RUNNING"}, id="uppercase"),
        pytest.param({"status": ""}, id="empty"),
        pytest.param({"status": None}, id="null"),
        pytest.param({}, id="missing"),
    ],
)
async def test_an_invalid_status_is_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, body: dict[str, Any]
) -> None:
    admin = await create_user(session, is_admin=True)
    owner = await create_user(session)
    job = await create_job(session, owner)

    response = await client.patch(
        f"{ADMIN_URL}/{job.job_id}", json=body, headers=bearer(admin, settings)
    )

    assert response.status_code == 422
    assert response.json()["success"] is False
    assert isinstance(response.json()["detail"], list)
    assert (await _owners_view(client, owner, job, settings))["status"] == "pending"

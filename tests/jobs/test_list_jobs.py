from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import JobStatus
from tests.factories import bearer, create_job, create_user

URL = "/api/users/jobs"


async def test_lists_the_users_jobs_in_the_spec_shape(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    job = await create_job(session, user, job_name="test", job_type="simple")

    response = await client.get(URL, headers=bearer(user, settings))

    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Jobs fetched successfully"
    assert body["success"] is True
    assert body["total"] == 1
    assert body["next_cursor"] is None
    assert list(body) == ["jobs", "message", "success", "total", "next_cursor"]
    [item] = body["jobs"]
    assert item["job_id"] == job.job_id
    assert item["status"] == "pending"
    assert item["job_name"] == "test"
    assert item["job_type"] == "simple"
    assert item["user_id"] == user.user_id
    assert set(item) == {
        "job_id",
        "status",
        "created_at",
        "job_name",
        "job_type",
        "updated_at",
        "user_id",
    }


async def test_timestamps_carry_an_explicit_utc_offset(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    await create_job(session, user)

    [item] = (await client.get(URL, headers=bearer(user, settings))).json()["jobs"]

    created_at = datetime.fromisoformat(item["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=5)


async def test_newest_first(client: AsyncClient, session: AsyncSession, settings: Settings) -> None:
    user = await create_user(session)
    now = datetime.now(UTC)
    old = await create_job(session, user, job_name="old", created_at=now - timedelta(days=2))
    new = await create_job(session, user, job_name="new", created_at=now)
    middle = await create_job(session, user, job_name="mid", created_at=now - timedelta(days=1))

    body = (await client.get(URL, headers=bearer(user, settings))).json()

    assert [job["job_id"] for job in body["jobs"]] == [new.job_id, middle.job_id, old.job_id]


async def test_a_user_sees_none_of_another_users_jobs(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    for _ in range(3):
        await create_job(session, alice)

    body = (await client.get(URL, headers=bearer(bob, settings))).json()

    assert body["jobs"] == []
    assert body["total"] == 0


async def test_without_credentials_answers_401(client: AsyncClient) -> None:
    response = await client.get(URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required", "success": False}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_pages_through_a_status_filter_without_gaps_or_repeats(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    now = datetime.now(UTC)
    statuses = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.COMPLETED]
    jobs = [
        # Pairs share a timestamp, so the keyset's tie-break on job_id is exercised.
        await create_job(
            session, user, status=statuses[i % 3], created_at=now - timedelta(seconds=i // 2)
        )
        for i in range(12)
    ]
    wanted = {job.job_id for job in jobs if job.status != JobStatus.COMPLETED}

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"status": ["pending", "running"], "limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(URL, params=params, headers=bearer(user, settings))).json()
        assert body["total"] == 8
        seen += [job["job_id"] for job in body["jobs"]]
        assert all(job["status"] in {"pending", "running"} for job in body["jobs"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert len(seen) == len(set(seen)) == 8
    assert set(seen) == wanted
    expected_order = sorted(
        (job for job in jobs if job.job_id in wanted),
        key=lambda job: (job.created_at, job.job_id),
        reverse=True,
    )
    assert seen == [job.job_id for job in expected_order]


async def test_rejects_out_of_range_limits_and_unknown_statuses(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)

    for params in ({"limit": 0}, {"limit": 1001}, {"limit": "ten"}, {"status": "done"}):
        response = await client.get(URL, params=params, headers=headers)
        assert response.status_code == 422, params
        assert response.json()["success"] is False
        assert isinstance(response.json()["detail"], list)


async def test_garbled_cursor_is_a_400(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    for cursor in ("not-a-cursor", "W10", "WyJ4IiwgMV0", "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwxXQ"):
        response = await client.get(URL, params={"cursor": cursor}, headers=bearer(user, settings))
        assert response.status_code == 400, cursor
        assert response.json() == {"detail": "Invalid cursor", "success": False}

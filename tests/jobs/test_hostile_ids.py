"""Out-of-range ids and garbled or forged cursors get a 4xx JSON answer, never a 500."""

import json
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import bearer, create_job, create_user
from tests.hostile import (
    JOBS_URL,
    assert_client_error,
    b64,
)

# Ids and cursors.

OUT_OF_RANGE_IDS = ["0", "-1", str(2**63), str(10**30), "abc", "1.5", "1e3", "%00"]


@pytest.mark.parametrize("job_id", OUT_OF_RANGE_IDS)
async def test_out_of_range_job_ids_are_404_or_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, job_id: str
) -> None:
    user = await create_user(session)
    admin = await create_user(session, is_admin=True)

    responses = [
        await client.get(f"{JOBS_URL}/{job_id}", headers=bearer(user, settings)),
        await client.post(f"{JOBS_URL}/{job_id}/cancel", headers=bearer(user, settings)),
        await client.patch(
            f"/api/admin/jobs/{job_id}", json={"status": "running"}, headers=bearer(admin, settings)
        ),
    ]

    for response in responses:
        assert_client_error(response, 404, 422)


@pytest.mark.parametrize("user_id", [*OUT_OF_RANGE_IDS, str(2**31)])
async def test_out_of_range_user_ids_are_404_or_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, user_id: str
) -> None:
    admin = await create_user(session, is_admin=True)

    response = await client.patch(
        f"/api/admin/users/{user_id}", json={"is_active": False}, headers=bearer(admin, settings)
    )

    assert_client_error(response, 404, 422)


async def test_the_largest_valid_ids_are_404(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    admin = await create_user(session, is_admin=True)
    largest_job = 2**63 - 1

    responses = [
        await client.get(f"{JOBS_URL}/{largest_job}", headers=bearer(user, settings)),
        await client.post(f"{JOBS_URL}/{largest_job}/cancel", headers=bearer(user, settings)),
        await client.patch(
            f"/api/admin/jobs/{largest_job}",
            json={"status": "running"},
            headers=bearer(admin, settings),
        ),
        await client.patch(
            f"/api/admin/users/{2**31 - 1}",
            json={"is_active": False},
            headers=bearer(admin, settings),
        ),
    ]

    for response in responses:
        assert_client_error(response, 404)


def _cursor(created_at: Any, job_id: Any) -> str:
    return b64(json.dumps([created_at, job_id]).encode())


HOSTILE_CURSORS: dict[str, str] = {
    "random-base64": b64(bytes(range(7, 250, 3))),
    "not-base64": "!!!$$$***",
    "not-json": b64(b"hello world"),
    "object": b64(b'{"created_at": "2025-01-01T00:00:00+00:00", "job_id": 1}'),
    "three-items": b64(b'["2025-01-01T00:00:00+00:00", 1, 2]'),
    "id-as-string": _cursor("2025-01-01T00:00:00+00:00", "1"),
    "id-as-float": _cursor("2025-01-01T00:00:00+00:00", 1.5),
    "id-as-bool": _cursor("2025-01-01T00:00:00+00:00", True),
    "id-null": _cursor("2025-01-01T00:00:00+00:00", None),
    "id-zero": _cursor("2025-01-01T00:00:00+00:00", 0),
    "id-negative": _cursor("2025-01-01T00:00:00+00:00", -5),
    "id-huge": _cursor("2025-01-01T00:00:00+00:00", 2**63),
    "id-enormous": _cursor("2025-01-01T00:00:00+00:00", 10**100),
    "time-as-number": _cursor(1735689600, 1),
    "time-garbled": _cursor("yesterday", 1),
    "time-naive": _cursor("2025-01-01T00:00:00", 1),
    "time-year-1-east": _cursor("0001-01-01T00:00:00+05:00", 1),
    "time-year-9999-west": _cursor("9999-12-31T23:00:00-05:00", 1),
    "utf8-garbage": b64(b"\xff\xfe\xfd"),
    "300-chars": "A" * 300,
}


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS.values(), ids=HOSTILE_CURSORS.keys())
async def test_garbled_or_forged_cursors_are_400_or_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, cursor: str
) -> None:
    user = await create_user(session)
    await create_job(session, user)

    response = await client.get(JOBS_URL, params={"cursor": cursor}, headers=bearer(user, settings))

    assert_client_error(response, 400, 422)

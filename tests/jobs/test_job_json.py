"""The list's JSON is JobListResponse's, byte for byte. On PostgreSQL each job is rendered by
the database (app/jobs/repository.py, JOB_JSON_SQL) and the page assembled around it
(list_response_json); here both are held to pydantic's own serialization of the schemas, on
names and timestamps that are awkward to escape and to format."""

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.jobs.schemas import JobListResponse, JobRead
from app.models import Job, JobStatus, User
from tests.factories import bearer, create_job, create_user

URL = "/api/users/jobs"
AWKWARD_NAMES = [
    'say "hello"',
    "back\\slash \\n \\u0000 not escapes",
    "controls \x01 \x08 \x0b \x0c \x1f \x7f end",
    "tab\there\nnew line\r\ncrlf",
    "</script><script>alert(1)</script>",
    "café ñ ü 日本語 עברית",
    "emoji 😀🚀 and a flag 🇫🇷",
    "separators \u2028 \u2029 and nbsp \u00a0",
    "  padded  ",
    "'single' & <amp> = %20 +",
]
BASE = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)


async def arrange_awkward_jobs(session: AsyncSession, user: User) -> None:
    """Awkward names and types, every status, timestamps with and without microseconds (and
    microseconds with trailing zeros), two jobs sharing a created_at, one on the app's clock."""
    microseconds = [0, 1, 500000, 123000, 999999, 10, 0, 654321, 0, 100000]
    statuses = list(JobStatus)
    jobs = []
    for i, name in enumerate(AWKWARD_NAMES):
        jobs.append(
            await create_job(
                session,
                user,
                job_name=name,
                job_type=["simple", 'ty"pe\\x', "ünï", "report"][i % 4],
                status=statuses[i % len(statuses)],
                created_at=(BASE - timedelta(minutes=i)).replace(microsecond=microseconds[i]),
            )
        )
    for i, job in enumerate(jobs):
        job.updated_at = BASE.replace(second=i, microsecond=i % 2 * 70)
    await session.commit()
    for name in ("twin a", "twin b"):
        await create_job(session, user, job_name=name, created_at=BASE - timedelta(days=3))
    await create_job(session, user, job_name="now", status=JobStatus.RUNNING)


async def stored_jobs(session: AsyncSession, user: User) -> list[Job]:
    """As the database holds them (its timestamp precision), newest first."""
    session.expunge_all()
    rows = await session.scalars(
        select(Job)
        .where(Job.user_id == user.user_id)
        .order_by(Job.created_at.desc(), Job.job_id.desc())
    )
    return list(rows)


def schema_json(jobs: list[Job], total: int, next_cursor: str | None) -> bytes:
    page = JobListResponse(
        jobs=[JobRead.model_validate(job) for job in jobs], total=total, next_cursor=next_cursor
    )
    return page.model_dump_json().encode()


async def test_every_page_is_the_schemas_own_serialization(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    await arrange_awkward_jobs(session, user)
    await create_job(session, await create_user(session), job_name="someone else's")
    expected = await stored_jobs(session, user)
    headers = bearer(user, settings)

    whole = await client.get(URL, headers=headers)
    assert whole.status_code == 200
    assert whole.content == schema_json(expected, len(expected), None)

    seen: list[Job] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = await client.get(URL, params=params, headers=headers)
        assert page.status_code == 200
        cursor = page.json()["next_cursor"]
        chunk = expected[len(seen) : len(seen) + 4]
        assert page.content == schema_json(chunk, len(expected), cursor)
        seen += chunk
        if cursor is None:
            break
    assert seen == expected


async def test_a_filtered_and_an_empty_page_are_the_schemas_own_serialization(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    await arrange_awkward_jobs(session, user)
    running = [job for job in await stored_jobs(session, user) if job.status == JobStatus.RUNNING]
    headers = bearer(user, settings)

    filtered = await client.get(URL, params={"status": "running"}, headers=headers)
    empty = await client.get(URL, headers=bearer(await create_user(session), settings))

    assert filtered.content == schema_json(running, len(running), None)
    assert empty.content == schema_json([], 0, None)

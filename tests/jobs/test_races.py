"""Real concurrency against real PostgreSQL: many requests in flight at once, each in its own
transaction on its own pooled connection.

The usual fixtures share one rolled-back transaction between the test and the app, which
serializes everything; these tests give the app its real engine instead. What they write is
committed, so every user they create is deleted at the end (jobs go with it by cascade).
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.db import create_sessionmaker
from app.jobs.engine import PostgresWorkQueue
from app.jobs.service import JobService
from app.models import Job, JobStatus, User
from tests.apps import open_app
from tests.factories import PASSWORD, bearer, create_job, create_user

pytestmark = pytest.mark.postgres_only

SECRET_KEY = "races-test-secret-key-0123456789abcdefgh"  # 40 characters
JOBS = "/api/users/jobs"


@dataclass
class Race:
    app: FastAPI
    client: AsyncClient
    settings: Settings
    engine: AsyncEngine  # the test's own, for arranging and checking data
    emails: list[str] = field(default_factory=list)

    def email(self, prefix: str) -> str:
        email = f"race-{prefix}-{uuid.uuid4().hex[:12]}@example.com"
        self.emails.append(email)
        return email

    async def user(self, prefix: str, *, is_admin: bool = False) -> User:
        async with create_sessionmaker(self.engine)() as session:
            return await create_user(session, email=self.email(prefix), is_admin=is_admin)

    async def session(self) -> AsyncSession:
        return create_sessionmaker(self.engine)()


@pytest.fixture
async def race(database_url: str, engine: AsyncEngine) -> AsyncIterator[Race]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        secret_key=SECRET_KEY,
        database_pool_size=20,
        database_max_overflow=10,
        database_timeout_seconds=10,
    )
    emails: list[str] = []
    try:
        # The real engine and sessionmaker: every request commits.
        async with open_app(settings, raise_app_exceptions=False) as running:
            yield Race(
                app=running.app,
                client=running.client,
                settings=settings,
                engine=engine,
                emails=emails,
            )
    finally:
        if emails:
            async with engine.begin() as connection:
                await connection.execute(delete(User).where(User.email.in_(emails)))


def _statuses(responses: Iterable[httpx.Response]) -> list[int]:
    return sorted(response.status_code for response in responses)


async def test_200_concurrent_submissions_all_land(race: Race) -> None:
    user = await race.user("submitter")
    headers = bearer(user, race.settings)
    before = await race.client.get(JOBS, params={"limit": 1000}, headers=headers)
    assert before.status_code == 200

    responses = await asyncio.gather(
        *(
            race.client.post(
                JOBS, json={"job_name": f"job {i}", "job_type": "simple"}, headers=headers
            )
            for i in range(200)
        )
    )

    assert Counter(r.status_code for r in responses) == {201: 200}, [
        (r.status_code, r.text) for r in responses if r.status_code != 201
    ]
    job_ids = {r.json()["job"]["job_id"] for r in responses}
    assert len(job_ids) == 200
    assert {r.json()["job"]["job_name"] for r in responses} == {f"job {i}" for i in range(200)}

    # Revalidating the empty list from before must not answer 304 Not Modified.
    stale = {"If-None-Match": before.headers["ETag"]} if "ETag" in before.headers else {}
    listed = await race.client.get(JOBS, params={"limit": 1000}, headers={**headers, **stale})
    assert listed.status_code == 200
    assert listed.json()["total"] == 200
    assert {job["job_id"] for job in listed.json()["jobs"]} == job_ids
    async with await race.session() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Job).where(Job.user_id == user.user_id)
        )
    assert stored == 200


async def test_workers_moving_two_jobs_of_one_user_do_not_wait_for_each_other(race: Race) -> None:
    owner = await race.user("busy")
    async with await race.session() as session:
        held, other = [await create_job(session, owner, status=JobStatus.PENDING) for _ in range(2)]
    queue = PostgresWorkQueue()

    # One worker starts a job and keeps its transaction open; another worker, meanwhile,
    # starts and completes another job of the same owner, each step in its own transaction.
    async with await race.session() as first, first.begin():
        assert await JobService(first, queue).start_attempt(held.job_id, max_attempts=3)
        async with await race.session() as second:
            for step in ("start", "complete"):
                async with second.begin():
                    # Waiting on the open transaction would fail here instead of hanging.
                    await second.execute(text("SET LOCAL lock_timeout = '2s'"))
                    jobs = JobService(second, queue)
                    if step == "start":
                        assert await jobs.start_attempt(other.job_id, max_attempts=3)
                    else:
                        assert await jobs.complete(other.job_id, {"done": True})
        assert await JobService(first, queue).complete(held.job_id, {"done": True})

    async with await race.session() as session:
        rows = await session.execute(
            select(Job.job_id, Job.status, Job.attempts).where(Job.user_id == owner.user_id)
        )
        stored = {job_id: (status, attempts) for job_id, status, attempts in rows}
    assert stored == {
        held.job_id: (JobStatus.COMPLETED, 1),
        other.job_id: (JobStatus.COMPLETED, 1),
    }


@pytest.mark.parametrize("admin_target", ["completed", "failed"])
async def test_owner_cancel_racing_an_admin_move_has_exactly_one_winner(
    race: Race, admin_target: str
) -> None:
    owner = await race.user("owner")
    admin = await race.user("admin", is_admin=True)
    async with await race.session() as session:
        jobs = [await create_job(session, owner, status=JobStatus.RUNNING) for _ in range(30)]
    owner_headers = bearer(owner, race.settings)
    admin_headers = bearer(admin, race.settings)

    async def duel(job_id: int) -> tuple[httpx.Response, httpx.Response]:
        cancel, move = await asyncio.gather(
            race.client.post(f"{JOBS}/{job_id}/cancel", headers=owner_headers),
            race.client.patch(
                f"/api/admin/jobs/{job_id}", json={"status": admin_target}, headers=admin_headers
            ),
        )
        return cancel, move

    # Every duel at once: 60 requests, 30 pairs fighting over 30 rows.
    duels = await asyncio.gather(*(duel(job.job_id) for job in jobs))

    async with await race.session() as session:
        rows = await session.execute(
            select(Job.job_id, Job.status).where(Job.job_id.in_([j.job_id for j in jobs]))
        )
        stored = {job_id: status for job_id, status in rows}
    winners: Counter[str] = Counter()
    conflicts: Counter[str] = Counter()
    for job, (cancel, move) in zip(jobs, duels, strict=True):
        pair = [(cancel.status_code, cancel.text), (move.status_code, move.text)]
        assert _statuses([cancel, move]) == [200, 409], (job.job_id, pair)
        winner, loser = (cancel, move) if cancel.status_code == 200 else (move, cancel)
        won_status = winner.json()["job"]["status"]
        assert won_status == ("cancelled" if winner is cancel else admin_target)
        # The stored row is what the winner was told: no lost update.
        assert stored[job.job_id].value == won_status, (job.job_id, pair)
        assert loser.json()["success"] is False
        winners["owner" if winner is cancel else "admin"] += 1
        conflicts[loser.json()["detail"]] += 1
    print(f"\nwinners: {dict(winners)}; the losers were told: {dict(conflicts)}")


async def test_concurrent_registrations_for_one_email_create_one_account(race: Race) -> None:
    for attempt in range(6):
        email = race.email(f"signup{attempt}")
        # Half the time the second one differs in case only: the same account all the same.
        other = email.upper() if attempt % 2 else email
        responses = await asyncio.gather(
            race.client.post("/api/auth/register", json={"email": email, "password": PASSWORD}),
            race.client.post("/api/auth/register", json={"email": other, "password": PASSWORD}),
        )

        assert _statuses(responses) == [201, 409], [(r.status_code, r.text) for r in responses]
        conflict = next(r for r in responses if r.status_code == 409)
        assert conflict.json() == {
            "detail": "A user with this email already exists",
            "success": False,
        }
        async with await race.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(User).where(User.email == email.lower())
            )
        assert count == 1
        login = await race.client.post(
            "/api/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        # Login set the session cookie; a cookie-carrying write without an Origin is refused
        # as cross-site, so the next round starts without it.
        race.client.cookies.clear()

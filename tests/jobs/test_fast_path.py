"""The dashboard's two polls, GET /api/users/jobs and GET /api/users/jobs/stats, on PostgreSQL's
fast path (app/jobs/fast_path.py), against the regular routes (app/jobs/router.py).

Every request here is sent twice: once as the app runs (on PostgreSQL the fast path answers
what it can), once with `app.state.reader = None`, which leaves everything to the regular
route. The two answers must carry the same status, the same bytes and the same headers. A
probe counts the database sessions the regular route opens, so each test also knows which of
the two answered: a fast answer opens none.

The parity tests only mean something on PostgreSQL (on SQLite both answers come from the
regular route) and are marked postgres_only. The tests of who may see what and of the access
log run on SQLite too, where they check the regular route alone.
"""

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from jose import jwt
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import app.core.security as security
from app.core.config import Settings
from app.core.db import PoolExhausted, PoolReader, create_sessionmaker, dispose_database
from app.jobs.schemas import JobListResponse, JobStatsResponse
from app.jobs.service import encode_cursor
from app.main import create_app
from app.models import Job, JobStatus, User
from tests.factories import PASSWORD, access_token, create_job, create_user

URL = "/api/users/jobs"
STATS_URL = "/api/users/jobs/stats"
INVALID_SESSION = b'{"detail":"Invalid or expired token","success":false}'
Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- the two answers


class RouteProbe:
    """Counts the sessions the regular routes open for GET requests (a fast answer opens none)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.sessions = 0
        inner = app.state.read_sessionmaker

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.sessions += 1
            return inner(*args, **kwargs)

        app.state.read_sessionmaker = counting

    @property
    def has_fast_path(self) -> bool:
        return self.app.state.reader is not None


@dataclass
class Answer:
    response: Response
    by_fast_path: bool

    @property
    def status(self) -> int:
        return self.response.status_code


@pytest.fixture
def probe(app: FastAPI) -> RouteProbe:
    return RouteProbe(app)


async def get(
    client: AsyncClient,
    probe: RouteProbe,
    path: str,
    *,
    params: Params = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    fast_path: bool = True,
) -> Answer:
    """One GET, as the app runs (`fast_path`) or with the regular route answering everything."""
    reader = probe.app.state.reader
    before = probe.sessions
    if not fast_path:
        probe.app.state.reader = None
    try:
        response = await client.get(path, params=params, headers=headers)
    finally:
        probe.app.state.reader = reader
    return Answer(response, by_fast_path=probe.sessions == before)


def _comparable_headers(response: Response) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.multi_items() if k != "x-request-id")


async def both(
    client: AsyncClient,
    probe: RouteProbe,
    path: str,
    *,
    params: Params = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    fast_answers: bool | None,
) -> Response:
    """The request answered with the fast path in place and by the regular route alone: they
    must be the same answer. `fast_answers` says whether the fast path should take it (200,
    304) or pass it on (everything else), None when either will do; on SQLite the regular
    route takes everything."""
    fast = await get(client, probe, path, params=params, headers=headers)
    regular = await get(client, probe, path, params=params, headers=headers, fast_path=False)

    assert not regular.by_fast_path
    if fast_answers is not None:
        assert fast.by_fast_path == (fast_answers and probe.has_fast_path), (path, params)
    assert fast.status == regular.status, (path, params, fast.response.text)
    assert fast.response.content == regular.response.content, (path, params)
    assert _comparable_headers(fast.response) == _comparable_headers(regular.response)
    if fast.status == 200:
        for name in ("etag", "cache-control", "vary", "content-type"):
            assert name in fast.response.headers, name
        if path == URL:
            JobListResponse.model_validate_json(fast.response.content)
        else:
            JobStatsResponse.model_validate_json(fast.response.content)
    return fast.response


# --------------------------------------------------------------------------- tricky data

TRICKY_NAMES = [
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


async def arrange_tricky_jobs(session: AsyncSession, user: User) -> list[Job]:
    """Awkward names and types, every status, timestamps with and without microseconds (and
    microseconds with trailing zeros), and two jobs sharing a created_at."""
    microseconds = [0, 1, 500000, 123000, 999999, 10, 0, 654321, 0, 100000]
    statuses = list(JobStatus)
    jobs = []
    for i, name in enumerate(TRICKY_NAMES):
        created_at = (BASE - timedelta(minutes=i)).replace(microsecond=microseconds[i])
        job = await create_job(
            session,
            user,
            job_name=name,
            job_type=["simple", 'ty"pe\\x', "ünï", "report"][i % 4],
            status=statuses[i % len(statuses)],
            created_at=created_at,
        )
        jobs.append(job)
    # updated_at: whole seconds on some jobs, microseconds on others.
    for i, job in enumerate(jobs):
        job.updated_at = BASE.replace(second=i, microsecond=i % 2 * 70)
    await session.commit()
    # Two jobs at the same instant: the keyset's tie-break on job_id.
    twin_at = BASE - timedelta(days=3)
    for name in ("twin a", "twin b"):
        jobs.append(await create_job(session, user, job_name=name, created_at=twin_at))
    # A job written with the application's own clock (microseconds as they come).
    jobs.append(await create_job(session, user, job_name="now", status=JobStatus.RUNNING))
    return jobs


def _shape(stamp: str) -> str:
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp):
        return "whole seconds"
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp):
        return "microseconds"
    raise AssertionError(f"not a UTC timestamp as pydantic writes one: {stamp!r}")


# --------------------------------------------------------------------------- parity


@pytest.mark.postgres_only
async def test_list_pages_are_the_same_bytes_on_both_paths(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    jobs = await arrange_tricky_jobs(session, user)
    await create_job(session, await create_user(session), job_name="someone else's")
    headers = _auth(access_token(user, settings))

    whole = await both(client, probe, URL, headers=headers, fast_answers=True)

    body = whole.json()
    assert body["total"] == len(jobs)
    assert body["next_cursor"] is None
    # The names come back as they were stored, whatever characters they hold.
    assert {job["job_name"] for job in body["jobs"]} == {job.job_name for job in jobs}
    assert {job["job_id"] for job in body["jobs"]} == {job.job_id for job in jobs}
    # Both timestamp shapes occur, in both fields: whole seconds, and six digits of fraction.
    for key in ("created_at", "updated_at"):
        shapes = {_shape(job[key]) for job in body["jobs"]}
        assert shapes == {"whole seconds", "microseconds"}, key
    created = {job["created_at"] for job in body["jobs"]}
    assert {"2024-02-29T23:58:59.000001Z", "2024-02-29T23:57:59.500000Z"} <= created


@pytest.mark.postgres_only
async def test_following_the_cursor_gives_the_same_pages_on_both_paths(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    jobs = await arrange_tricky_jobs(session, user)
    headers = _auth(access_token(user, settings))

    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        body = (
            await both(client, probe, URL, params=params, headers=headers, fast_answers=True)
        ).json()
        assert body["total"] == len(jobs)
        seen += [job["job_id"] for job in body["jobs"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == -(-len(jobs) // 3)
    assert sorted(seen) == sorted(job.job_id for job in jobs)
    assert len(seen) == len(set(seen))


@pytest.mark.postgres_only
async def test_status_filters_and_odd_query_strings_answer_the_same(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    jobs = await arrange_tricky_jobs(session, user)
    headers = _auth(access_token(user, settings))
    past_the_end = encode_cursor(datetime(2000, 1, 1, tzinfo=UTC), 1)
    running_or_pending = sum(j.status in (JobStatus.RUNNING, JobStatus.PENDING) for j in jobs)

    cases: list[tuple[Params, int, int]] = [
        # (query, total, how many jobs on the page)
        ([("status", "running"), ("status", "pending")], running_or_pending, running_or_pending),
        ([("status", "pending"), ("status", "running"), ("status", "pending")],
         running_or_pending, running_or_pending),
        ([("status", "failed"), ("limit", "1")], 2, 1),
        ({"cursor": past_the_end}, len(jobs), 0),
        ([("cursor", past_the_end), ("status", "completed")], 2, 0),
        ({"limit": "1000"}, len(jobs), len(jobs)),
        ({"unknown": "ignored"}, len(jobs), len(jobs)),
        ({"cursor": ""}, len(jobs), len(jobs)),
        ({"limit": "2", "status": "cancelled"}, 2, 2),
        # Spellings the validation accepts, as the regular route does.
        ({"limit": "+5"}, len(jobs), 5),
        ({"limit": " 5 "}, len(jobs), 5),
        ({"limit": "5.0"}, len(jobs), 5),
        ({"limit": "1_0"}, len(jobs), 10),
        ({"cursor": None, "": "5"}, len(jobs), len(jobs)),
    ]  # fmt: skip
    for params, total, on_page in cases:
        body = (
            await both(client, probe, URL, params=params, headers=headers, fast_answers=True)
        ).json()
        assert body["total"] == total, params
        assert len(body["jobs"]) == on_page, params


@pytest.mark.postgres_only
async def test_a_user_without_jobs_gets_the_same_empty_answers(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    await arrange_tricky_jobs(session, await create_user(session))
    headers = _auth(access_token(user, settings))

    for params in (None, {"status": "pending"}, {"cursor": encode_cursor(BASE, 10**9)}):
        body = (
            await both(client, probe, URL, params=params, headers=headers, fast_answers=True)
        ).json()
        assert (body["jobs"], body["total"], body["next_cursor"]) == ([], 0, None)
    stats = (await both(client, probe, STATS_URL, headers=headers, fast_answers=True)).json()
    assert set(stats["stats"].values()) == {0}


@pytest.mark.postgres_only
async def test_stats_are_the_same_bytes_on_both_paths(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    counts = {
        JobStatus.PENDING: 3,
        JobStatus.RUNNING: 1,
        JobStatus.COMPLETED: 2,
        JobStatus.CANCELLED: 1,
    }
    for status, count in counts.items():
        for _ in range(count):
            await create_job(session, user, status=status)
    await create_job(session, await create_user(session), status=JobStatus.FAILED)
    headers = _auth(access_token(user, settings))

    body = (await both(client, probe, STATS_URL, headers=headers, fast_answers=True)).json()
    # The stats ignore a query string, on both paths.
    await both(client, probe, STATS_URL, params={"limit": "0"}, headers=headers, fast_answers=True)

    assert body["stats"] == {
        "total": 7,
        "pending": 3,
        "running": 1,
        "completed": 2,
        "failed": 0,
        "cancelled": 1,
    }


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    ("path", "params"),
    [(URL, None), (URL, {"limit": "2", "status": ["running", "pending"]}), (STATS_URL, None)],
)
async def test_conditional_gets_answer_the_same(
    path: str,
    params: Params,
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    probe: RouteProbe,
) -> None:
    user = await create_user(session)
    await arrange_tricky_jobs(session, user)
    headers = _auth(access_token(user, settings))
    etag = (
        await both(client, probe, path, params=params, headers=headers, fast_answers=True)
    ).headers["etag"]

    for if_none_match in (etag, f"W/{etag}", f'"stale", {etag}', "*"):
        not_modified = await both(
            client,
            probe,
            path,
            params=params,
            headers={**headers, "If-None-Match": if_none_match},
            fast_answers=True,
        )
        assert not_modified.status_code == 304, if_none_match
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == etag

    for if_none_match in ('"stale"', etag.replace('"', ""), f"{etag}x"):
        changed = await both(
            client,
            probe,
            path,
            params=params,
            headers={**headers, "If-None-Match": if_none_match},
            fast_answers=True,
        )
        assert changed.status_code == 200, if_none_match
        assert changed.headers["etag"] == etag


@pytest.mark.postgres_only
async def test_through_its_own_pool_the_fast_path_answers_the_same_bytes(
    engine: AsyncEngine, settings: Settings
) -> None:
    """As in production: the app's own engine and PoolReader, on committed data (deleted at the
    end), not the test's transaction."""
    app = create_app(settings)
    assert isinstance(app.state.reader, PoolReader)
    probe = RouteProbe(app)
    async with create_sessionmaker(engine)() as session:
        user = await create_user(session)
        try:
            jobs = await arrange_tricky_jobs(session, user)
            headers = _auth(access_token(user, settings))
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="https://testserver") as client:
                listed = await both(client, probe, URL, headers=headers, fast_answers=True)
                paged = await both(
                    client,
                    probe,
                    URL,
                    params={"limit": 4, "status": ["pending", "running", "completed"]},
                    headers=headers,
                    fast_answers=True,
                )
                await both(
                    client,
                    probe,
                    URL,
                    params={"limit": 4, "cursor": paged.json()["next_cursor"]},
                    headers=headers,
                    fast_answers=True,
                )
                stats = await both(client, probe, STATS_URL, headers=headers, fast_answers=True)
                for path, etag in (
                    (URL, listed.headers["etag"]),
                    (STATS_URL, stats.headers["etag"]),
                ):
                    unchanged = await both(
                        client,
                        probe,
                        path,
                        headers={**headers, "If-None-Match": etag},
                        fast_answers=True,
                    )
                    assert unchanged.status_code == 304
            assert listed.json()["total"] == len(jobs)
            assert {job["job_name"] for job in listed.json()["jobs"]} == {j.job_name for j in jobs}
        finally:
            await session.execute(delete(User).where(User.user_id == user.user_id))
            await session.commit()
            await dispose_database(app.state)
            await app.state.login_throttle.counter.close()


# --------------------------------------------------------------------------- who may see what


async def test_another_users_jobs_never_appear(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    alice = await create_user(session)
    bob = await create_user(session)
    await arrange_tricky_jobs(session, alice)
    bobs = await create_job(session, bob, job_name="bob's", status=JobStatus.FAILED)
    alice_headers = _auth(access_token(alice, settings))
    bob_headers = _auth(access_token(bob, settings))
    alices_page = await both(
        client, probe, URL, params={"limit": 2}, headers=alice_headers, fast_answers=True
    )
    alices_stats = await both(client, probe, STATS_URL, headers=alice_headers, fast_answers=True)

    listed = await both(client, probe, URL, headers=bob_headers, fast_answers=True)
    # Alice's cursor and ETags get Bob nothing of hers.
    paged = await both(
        client,
        probe,
        URL,
        params={"limit": 2, "cursor": alices_page.json()["next_cursor"]},
        headers={**bob_headers, "If-None-Match": alices_page.headers["etag"]},
        fast_answers=True,
    )
    stats = await both(
        client,
        probe,
        STATS_URL,
        headers={**bob_headers, "If-None-Match": alices_stats.headers["etag"]},
        fast_answers=True,
    )

    assert [job["job_id"] for job in listed.json()["jobs"]] == [bobs.job_id]
    assert listed.json()["total"] == 1
    assert paged.status_code == 200
    assert [job["job_id"] for job in paged.json()["jobs"]] == []
    assert paged.json()["total"] == 1
    assert stats.status_code == 200
    assert stats.json()["stats"]["total"] == stats.json()["stats"]["failed"] == 1


async def _polls_refused(
    client: AsyncClient, probe: RouteProbe, headers: dict[str, str], etags: dict[str, str]
) -> None:
    """The list and the stats refuse these credentials with the regular route's 401, also when
    the request names an ETag the user was given before."""
    for path in (URL, STATS_URL):
        for extra in ({}, {"If-None-Match": etags[path]}):
            refused = await both(
                client, probe, path, headers={**headers, **extra}, fast_answers=False
            )
            assert refused.status_code == 401, (path, extra)
            assert refused.content == INVALID_SESSION
            assert refused.headers["www-authenticate"] == "Bearer"


async def _etags(client: AsyncClient, probe: RouteProbe, headers: dict[str, str]) -> dict[str, str]:
    etags = {}
    for path in (URL, STATS_URL):
        answer = await both(client, probe, path, headers=headers, fast_answers=True)
        assert answer.status_code == 200
        etags[path] = answer.headers["etag"]
    return etags


async def test_a_logged_out_token_is_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    headers = _auth(access_token(user, settings))
    other_device = _auth(access_token(user, settings))
    etags = await _etags(client, probe, headers)

    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 200

    await _polls_refused(client, probe, headers, etags)
    # Only that session ended.
    await _etags(client, probe, other_device)


async def test_a_token_from_before_a_password_change_is_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    old = _auth(access_token(user, settings))
    etags = await _etags(client, probe, old)

    changed = await client.post(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=old,
    )
    assert changed.status_code == 200
    client.cookies.clear()  # the answer set the new cookie; these requests use Bearer only

    await _polls_refused(client, probe, old, etags)
    new_etags = await _etags(client, probe, _auth(changed.json()["access_token"]))
    # Nothing about the jobs changed, so the ETags did not either.
    assert new_etags == etags


async def test_a_deactivated_users_token_is_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    admin = await create_user(session, is_admin=True)
    user = await create_user(session)
    await create_job(session, user)
    headers = _auth(access_token(user, settings))
    etags = await _etags(client, probe, headers)

    deactivated = await client.patch(
        f"/api/admin/users/{user.user_id}",
        json={"is_active": False},
        headers=_auth(access_token(admin, settings)),
    )
    assert deactivated.status_code == 200

    await _polls_refused(client, probe, headers, etags)


async def test_an_inactive_users_token_is_refused_even_with_its_token_version_unchanged(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    # Marked inactive in the database directly (an operator, a script): only is_active says
    # the account is closed.
    user = await create_user(session)
    await create_job(session, user)
    headers = _auth(access_token(user, settings))
    etags = await _etags(client, probe, headers)

    user.is_active = False
    await session.commit()

    await _polls_refused(client, probe, headers, etags)


def _expired(user: User, settings: Settings) -> str:
    claims = jwt.get_unverified_claims(access_token(user, settings))
    now = datetime.now(UTC)
    claims |= {"iat": int((now - timedelta(hours=2)).timestamp()), "exp": int(now.timestamp()) - 1}
    return jwt.encode(claims, settings.secret_key, algorithm="HS256")


def _tampered(user: User, settings: Settings) -> str:
    header, payload, signature = access_token(user, settings).split(".")
    flipped = "A" if signature[3] != "A" else "B"
    return ".".join([header, payload, signature[:3] + flipped + signature[4:]])


def _wrong_key(user: User, settings: Settings) -> str:
    claims = jwt.get_unverified_claims(access_token(user, settings))
    return jwt.encode(claims, "another-secret-key-that-is-long-enough-987654", algorithm="HS256")


def _unknown_user(user: User, settings: Settings) -> str:
    # Validly signed, for a user who does not exist.
    claims = jwt.get_unverified_claims(access_token(user, settings))
    return jwt.encode(claims | {"sub": str(user.user_id + 10**6)}, settings.secret_key)


@pytest.mark.parametrize("make_token", [_expired, _tampered, _wrong_key, _unknown_user])
async def test_an_expired_tampered_or_foreign_token_is_refused(
    make_token: Callable[[User, Settings], str],
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    probe: RouteProbe,
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    etags = await _etags(client, probe, _auth(access_token(user, settings)))

    await _polls_refused(client, probe, _auth(make_token(user, settings)), etags)


async def test_a_token_stops_working_on_the_fast_path_when_it_expires(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    probe: RouteProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    headers = _auth(access_token(user, settings))
    # Polled while valid: the token's verified claims are now cached.
    etags = await _etags(client, probe, headers)
    await _etags(client, probe, headers)

    later = datetime.now(UTC) + timedelta(seconds=settings.access_token_lifetime_seconds + 1)

    class _Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "_Later":
            return cls.fromtimestamp(later.timestamp(), tz)

    monkeypatch.setattr(security, "datetime", _Later)

    await _polls_refused(client, probe, headers, etags)


async def test_the_login_cookie_works_on_the_fast_path(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    other = await create_user(session)
    job = await create_job(session, user)
    await create_job(session, other)
    login = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200
    token = login.json()["access_token"]
    assert client.cookies.get("access_token") == token

    listed = await both(client, probe, URL, fast_answers=True)
    stats = await both(client, probe, STATS_URL, fast_answers=True)
    unchanged = await both(
        client, probe, URL, headers={"If-None-Match": listed.headers["etag"]}, fast_answers=True
    )
    # Another scheme in Authorization leaves the cookie to count; so does an empty Bearer.
    for authorization in ("Basic dXNlcjpwYXNz", "Bearer"):
        with_header = await both(
            client, probe, URL, headers={"Authorization": authorization}, fast_answers=True
        )
        assert with_header.content == listed.content, authorization

    assert [item["job_id"] for item in listed.json()["jobs"]] == [job.job_id]
    assert stats.json()["stats"]["total"] == 1
    assert unchanged.status_code == 304

    # A Bearer header wins over the cookie, whether it is another user's or a bad one.
    others = await both(
        client, probe, URL, headers=_auth(access_token(other, settings)), fast_answers=True
    )
    assert [item["user_id"] for item in others.json()["jobs"]] == [other.user_id]
    garbled = await both(client, probe, URL, headers=_auth("not-a-token"), fast_answers=False)
    assert garbled.status_code == 401

    # A browser names the page's origin on a cookie-carrying POST (CSRF).
    out = await client.post("/api/auth/logout", headers={"Origin": "http://localhost:3000"})
    assert out.status_code == 200
    # A copy of the cookie kept from before the logout no longer works.
    client.cookies.set("access_token", token)
    etags = {URL: listed.headers["etag"], STATS_URL: stats.headers["etag"]}
    await _polls_refused(client, probe, {}, etags)


async def test_a_logged_out_bearer_is_not_rescued_by_a_valid_cookie(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    revoked = access_token(user, settings)
    assert (await client.post("/api/auth/logout", headers=_auth(revoked))).status_code == 200
    client.cookies.set("access_token", access_token(user, settings))

    for path in (URL, STATS_URL):
        refused = await both(client, probe, path, headers=_auth(revoked), fast_answers=False)
        assert refused.status_code == 401


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": "0"}, 422),
        ({"limit": "1001"}, 422),
        ({"limit": "ten"}, 422),
        ({"limit": ""}, 422),
        ({"status": "done"}, 422),
        ({"status": "PENDING"}, 422),
        ([("status", "pending"), ("status", "")], 422),
        ({"cursor": "x" * 201}, 422),
        ({"cursor": "not-a-cursor"}, 400),
        ({"cursor": "W10"}, 400),
        ({"cursor": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwxXQ"}, 400),  # no UTC offset
        ([("limit", "0"), ("limit", "5")], 200),  # repeated: the regular route takes the last
        ([("limit", "5"), ("limit", "0")], 422),
        ([("cursor", "not-a-cursor"), ("cursor", "")], 200),
        ({"limit": "0x10"}, 422),
        ({"limit": "\uff15"}, 422),  # a fullwidth digit five
        ({"limit": "1e2"}, 422),
        ({"limit": "5\x00"}, 422),
        ({"status": "\xff"}, 422),
        ({"cursor": "\x00"}, 400),
    ],
)
async def test_bad_queries_get_the_regular_routes_answer(
    params: Params,
    status: int,
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    probe: RouteProbe,
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    headers = _auth(access_token(user, settings))

    # Errors are the regular route's to give; a repeated parameter may be left to it too.
    fast_answers = None if status == 200 else False
    answer = await both(
        client, probe, URL, params=params, headers=headers, fast_answers=fast_answers
    )

    assert answer.status_code == status, answer.text
    if status != 200:
        assert answer.json()["success"] is False


async def test_repeated_credentials_get_the_regular_routes_answer(
    client: AsyncClient, session: AsyncSession, settings: Settings, probe: RouteProbe
) -> None:
    user = await create_user(session)
    other = await create_user(session)
    await create_job(session, user)
    await create_job(session, other)
    token = access_token(user, settings)
    other_token = access_token(other, settings)
    etag = (await client.get(URL, headers=_auth(token))).headers["etag"]

    cases: list[tuple[list[tuple[str, str]], int]] = [
        # Which copy counts is the regular route's call: the first.
        ([("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {other_token}")], 200),
        ([("Authorization", "Bearer not-a-token"), ("Authorization", f"Bearer {token}")], 401),
        ([("Authorization", f"Bearer {token}"), ("If-None-Match", '"a"'), ("If-None-Match", etag)],
         200),
    ]  # fmt: skip
    for headers, status in cases:
        answer = await both(client, probe, URL, headers=headers, fast_answers=False)
        assert answer.status_code == status, headers
        if status == 200:
            assert [job["user_id"] for job in answer.json()["jobs"]] == [user.user_id]


async def test_a_poll_that_finds_no_free_connection_answers_503(
    client: AsyncClient, session: AsyncSession, settings: Settings, app: FastAPI
) -> None:
    user = await create_user(session)

    class _ExhaustedReader:
        async def fetchrow(self, query: str, *args: object) -> None:
            raise PoolExhausted("no database connection came free within 0.05 s")

        async def close(self) -> None:
            pass

    app.state.reader = _ExhaustedReader()
    for path in (URL, STATS_URL):
        response = await client.get(path, headers=_auth(access_token(user, settings)))
        assert response.status_code == 503, path
        assert response.headers["retry-after"] == "5"
        assert response.json() == {
            "detail": "Service temporarily unavailable, try again shortly",
            "success": False,
        }


# --------------------------------------------------------------------------- the access log


@contextmanager
def access_lines(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    caplog.set_level(logging.INFO, logger="app.access")
    caplog.clear()
    yield records
    records += [r for r in caplog.records if r.name == "app.access"]


async def test_a_fast_answer_writes_one_access_line_with_the_route_and_the_user(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    probe: RouteProbe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = await create_user(session)
    await create_job(session, user)
    headers = _auth(access_token(user, settings))
    etag = (await client.get(URL, headers=headers)).headers["etag"]

    for path, extra, status in (
        (URL, {}, 200),
        (URL + "?limit=5&status=pending", {}, 200),
        (STATS_URL, {}, 200),
        (URL, {"If-None-Match": etag}, 304),
    ):
        with access_lines(caplog) as lines:
            answer = await get(client, probe, path, headers={**headers, **extra})
        assert answer.status == status, path
        assert answer.by_fast_path == probe.has_fast_path
        [line] = lines
        route = path.partition("?")[0]
        assert (line.method, line.route, line.path) == ("GET", route, route)  # type: ignore[attr-defined]
        assert line.status == status  # type: ignore[attr-defined]
        assert line.user_id == user.user_id  # type: ignore[attr-defined]
        assert line.getMessage() == f"GET {route} {status}"


async def test_a_request_passed_on_logs_the_regular_routes_outcome(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    probe: RouteProbe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = await create_user(session)
    revoked = access_token(user, settings)
    await client.post("/api/auth/logout", headers=_auth(revoked))
    valid = _auth(access_token(user, settings))

    for path, headers, status, user_id in (
        (URL, _auth(revoked), 401, None),
        (STATS_URL, _auth(revoked), 401, None),
        (URL, {}, 401, None),
        # A valid token with a bad query: the route checks the token first, so names the user.
        (URL + "?limit=0", valid, 422, user.user_id),
    ):
        with access_lines(caplog) as lines:
            answer = await get(client, probe, path, headers=headers)
        assert answer.status == status, path
        assert not answer.by_fast_path
        [line] = lines
        assert line.route == path.partition("?")[0]  # type: ignore[attr-defined]
        assert line.status == status  # type: ignore[attr-defined]
        assert line.user_id == user_id, path  # type: ignore[attr-defined]

"""The dashboard's revalidations answered from memory (app/jobs/revalidation_cache.py).

The unit tests drive RevalidationCache alone. The integration tests (PostgreSQL only) run the real
app with its lifespan, so ChangeListener LISTENs on `jobs_feed`, on committed data: nothing is
rolled back for them, so each test signs up users of its own and deletes them at the end.

A poll's database reads are counted by wrapping the hot path's reader (`app.state.reader`). A
notification reaches the app a few milliseconds after the commit that sent it; `settle()` waits
until every earlier one has arrived (PostgreSQL delivers them in commit order), so that a test
knows what the app has heard before it counts.
"""

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.security import TokenClaims, decode_access_token
from app.jobs.revalidation_cache import (
    LISTENER_NAME,
    MAX_TOKENS_PER_USER,
    ChangeListener,
    RevalidationCache,
)
from app.main import create_app
from tests.tcp_proxy import BLACKHOLE, TcpProxy

# ---------------------------------------------------------------------------------------------
# RevalidationCache on its own
# ---------------------------------------------------------------------------------------------


def claims(user_id: int = 1, token_version: int = 0, jti: str = "a") -> TokenClaims:
    return TokenClaims(
        user_id=user_id, token_version=token_version, jti=jti, expires_at=datetime.now(UTC)
    )


def live_versions(max_users: int = 100) -> RevalidationCache:
    versions = RevalidationCache(max_users)
    versions.go_live()
    return versions


def remember(versions: RevalidationCache, token: TokenClaims, jobs_version: int) -> None:
    """A read that nothing crossed: it started at the current generation."""
    versions.remember(token, jobs_version, versions.generation())


def test_nothing_is_remembered_while_dark() -> None:
    versions = RevalidationCache(100)

    remember(versions, claims(), 3)

    assert not versions.live
    assert versions.lookup(claims()) is None
    assert len(versions) == 0


def test_an_answer_is_remembered_once_live() -> None:
    versions = live_versions()

    remember(versions, claims(), 3)

    assert versions.live
    assert versions.lookup(claims()) == 3
    assert len(versions) == 1


@pytest.mark.parametrize("forget", ["one user", "another user", "everyone"])
def test_a_read_that_crossed_a_forget_is_not_kept(forget: str) -> None:
    """The read started before a change was forgotten, its answer arrives after: it may
    predate the change, so it is dropped, whichever user the forget was about."""
    versions = live_versions()
    generation = versions.generation()
    if forget == "one user":
        versions.forget([1])
    elif forget == "another user":
        versions.forget([2])
    else:
        versions.forget_all()

    versions.remember(claims(), 3, generation)

    assert versions.lookup(claims()) is None
    assert len(versions) == 0


def test_forgetting_one_user_keeps_the_others() -> None:
    versions = live_versions()
    remember(versions, claims(user_id=1), 3)
    remember(versions, claims(user_id=2), 7)

    versions.forget([1])

    assert versions.lookup(claims(user_id=1)) is None
    assert versions.lookup(claims(user_id=2)) == 7


def test_only_the_tokens_remembered_are_answered() -> None:
    """Another token of the same user may have been revoked, or predate a password change: it
    is asked about in the database until remembered itself."""
    versions = live_versions()
    remember(versions, claims(jti="a"), 3)

    assert versions.lookup(claims(jti="b")) is None
    assert versions.lookup(claims(token_version=1, jti="a")) is None
    assert versions.lookup(claims(user_id=2, jti="a")) is None

    remember(versions, claims(jti="b"), 3)
    assert versions.lookup(claims(jti="a")) == 3
    assert versions.lookup(claims(jti="b")) == 3


def test_a_user_keeps_a_bounded_number_of_tokens() -> None:
    versions = live_versions()
    tokens = [claims(jti=f"t{n}") for n in range(MAX_TOKENS_PER_USER + 1)]
    for token in tokens:
        remember(versions, token, 3)

    assert versions.lookup(tokens[0]) is None
    assert versions.lookup(tokens[-1]) == 3


def test_going_dark_forgets_everything() -> None:
    versions = live_versions()
    remember(versions, claims(user_id=1), 3)
    remember(versions, claims(user_id=2), 7)
    generation = versions.generation()

    versions.go_dark()
    remember(versions, claims(user_id=3), 1)  # while dark: not kept either

    assert not versions.live
    assert len(versions) == 0
    versions.go_live()
    versions.remember(claims(user_id=1), 3, generation)  # a read from before the outage
    assert len(versions) == 0
    assert all(versions.lookup(claims(user_id=n)) is None for n in (1, 2, 3))


def test_going_live_starts_from_nothing() -> None:
    """Going live again (a reconnection) forgets what was remembered before: changes may
    have been missed in between."""
    versions = live_versions()
    remember(versions, claims(), 3)

    versions.go_live()

    assert versions.lookup(claims()) is None


def test_two_reads_that_disagree_leave_nothing() -> None:
    """Two reads of one user saw different jobs_versions with no change heard of in between:
    its notice is still on the way, so neither answer is kept."""
    versions = live_versions()
    remember(versions, claims(jti="a"), 3)

    remember(versions, claims(jti="b"), 4)

    assert versions.lookup(claims(jti="a")) is None
    assert versions.lookup(claims(jti="b")) is None
    assert len(versions) == 0


def test_max_users_drops_the_longest_remembered_user() -> None:
    versions = live_versions(max_users=2)
    for user_id in (1, 2, 3):
        remember(versions, claims(user_id=user_id), user_id * 10)

    assert len(versions) == 2
    assert versions.lookup(claims(user_id=1)) is None
    assert versions.lookup(claims(user_id=2)) == 20
    assert versions.lookup(claims(user_id=3)) == 30


def test_max_users_zero_remembers_nothing() -> None:
    versions = live_versions(max_users=0)

    remember(versions, claims(), 3)

    assert versions.lookup(claims()) is None
    assert len(versions) == 0


# ---------------------------------------------------------------------------------------------
# The running app, on PostgreSQL
# ---------------------------------------------------------------------------------------------

postgres_only = pytest.mark.postgres_only

SECRET_KEY = "feed-versions-test-secret-key-0123456789"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse battery"
JOBS = "/api/users/jobs"
STATS = "/api/users/jobs/stats"
FEEDS = (JOBS, STATS)
DB_TIMEOUT = 1.0  # the app's connect timeout, and the listener's ping timeout
CHECK_EVERY = 1.0  # ChangeListener's default ping interval
# Generous bounds on things that normally take milliseconds (a notification, a reconnection
# after ChangeListener's 1 s retry delay); reaching one fails the test.
NOTICE_BOUND = 5.0
RECONNECT_BOUND = 10.0
_markers = itertools.count(2**31 - 1, -1)  # notification payloads no user id can equal


async def wait_until(
    condition: Callable[[], Awaitable[bool] | bool], bound: float, what: str
) -> float:
    """Seconds until `condition` held; fails the test past `bound`."""
    started = time.monotonic()
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return time.monotonic() - started
        if time.monotonic() - started > bound:
            pytest.fail(f"{what}: not within {bound:g} s")
        await asyncio.sleep(0.02)


@dataclass
class Notices:
    """The notifications the app's listener received; while `holding`, they are recorded but
    not acted upon, so only the app's own bookkeeping can make it forget."""

    seen: list[str] = field(default_factory=list)
    holding: bool = False


@dataclass
class Account:
    user_id: int
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Stack:
    app: FastAPI
    client: AsyncClient
    engine: AsyncEngine  # the test's own: another process, as far as the app can tell
    notices: Notices
    emails: list[str]
    reads: int = 0

    @property
    def versions(self) -> RevalidationCache:
        versions: RevalidationCache = self.app.state.revalidation_cache
        return versions

    async def sign_up(self, *, admin: bool = False) -> Account:
        email = f"feed-{uuid.uuid4().hex[:12]}@example.com"
        self.emails.append(email)
        response = await self.client.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        user_id = response.json()["user"]["user_id"]
        if admin:
            await self.execute("UPDATE users SET is_admin = true WHERE user_id = :id", id=user_id)
        return Account(user_id, email, await self.log_in(email))

    async def log_in(self, email: str, password: str = PASSWORD) -> str:
        response = await self.client.post(
            "/api/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        self.client.cookies.clear()  # Bearer tokens only: no cookie rides along
        token: str = response.json()["access_token"]
        return token

    async def submit(self, account: Account, name: str) -> None:
        response = await self.client.post(
            JOBS, json={"job_name": name, "job_type": "simple"}, headers=account.headers
        )
        assert response.status_code == 201, response.text

    async def execute(self, sql: str, **params: Any) -> None:
        """Committed by another connection than the app's: only a notification tells it."""
        async with self.engine.begin() as connection:
            await connection.execute(text(sql), params)

    async def settle(self) -> None:
        """Wait until the app's listener has received every notification committed so far."""
        marker = str(next(_markers))
        await self.execute("SELECT pg_notify('jobs_feed', :marker)", marker=marker)
        await wait_until(lambda: marker in self.notices.seen, NOTICE_BOUND, "marker notice")

    async def wait_live(self) -> float:
        return await wait_until(lambda: self.versions.live, RECONNECT_BOUND, "listener live")

    async def poll(self, path: str, account: Account, etag: str | None = None) -> httpx.Response:
        headers = account.headers if etag is None else {**account.headers, "If-None-Match": etag}
        return await self.client.get(path, headers=headers)

    async def full_get(self, path: str, account: Account) -> str:
        response = await self.poll(path, account)
        assert response.status_code == 200, response.text
        etag: str = response.headers["etag"]
        return etag

    async def assert_answered_from_memory(self, path: str, account: Account, etag: str) -> None:
        """Revalidations answer 304 without a single database read."""
        before = self.reads
        for _ in range(5):
            response = await self.poll(path, account, etag)
            assert response.status_code == 304, (response.status_code, response.text)
            assert response.headers["etag"] == etag
        assert self.reads == before, f"{self.reads - before} reads for 5 revalidations"

    async def warm(self, account: Account) -> dict[str, str]:
        """Every notification heard, then each feed read once: its ETag, now remembered."""
        await self.settle()
        etags = {path: await self.full_get(path, account) for path in FEEDS}
        for path, etag in etags.items():
            await self.assert_answered_from_memory(path, account, etag)
        return etags


def _settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        secret_key=SECRET_KEY,
        database_timeout_seconds=DB_TIMEOUT,
        database_statement_timeout_seconds=2,
        **overrides,
    )


@asynccontextmanager
async def running_app(
    settings: Settings, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    """The app with its lifespan running (the listener started); its users deleted after."""
    notices = Notices()
    deliver = ChangeListener._on_notification

    def on_notification(
        listener: ChangeListener, connection: object, pid: int, channel: str, payload: str
    ) -> None:
        notices.seen.append(payload)
        if not notices.holding:
            deliver(listener, connection, pid, channel, payload)

    monkeypatch.setattr(ChangeListener, "_on_notification", on_notification)
    app = create_app(settings)
    emails: list[str] = []
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="https://testserver") as client:
        stack = Stack(app=app, client=client, engine=engine, notices=notices, emails=emails)
        reader = app.state.reader
        read = reader.fetchrow

        async def counted_fetchrow(query: str, *args: object) -> Any:
            stack.reads += 1
            return await read(query, *args)

        reader.fetchrow = counted_fetchrow
        try:
            async with app.router.lifespan_context(app):
                yield stack
        finally:
            if emails:
                await stack.execute("DELETE FROM users WHERE email = ANY(:emails)", emails=emails)


@pytest.fixture
async def stack(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    async with running_app(_settings(database_url), engine, monkeypatch) as stack:
        await stack.wait_live()
        yield stack


async def listener_pids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": LISTENER_NAME},
        )
        return [pid for (pid,) in result]


# --- answered from memory -------------------------------------------------------------------


@postgres_only
@pytest.mark.parametrize("path", FEEDS)
async def test_revalidations_after_one_full_read_cost_no_database_read(
    stack: Stack, path: str
) -> None:
    account = await stack.sign_up()
    await stack.submit(account, "one")
    await stack.settle()

    reads_before = stack.reads
    etag = await stack.full_get(path, account)
    assert stack.reads == reads_before + 1

    await stack.assert_answered_from_memory(path, account, etag)
    assert stack.versions.live


# --- this process's own writes: seen at once, notifications held back ------------------------


async def _submit_a_job(stack: Stack, account: Account) -> int:
    await stack.submit(account, "after the poll")
    return 200


async def _log_out(stack: Stack, account: Account) -> int:
    response = await stack.client.post("/api/auth/logout", headers=account.headers)
    assert response.status_code == 200, response.text
    return 401


async def _change_password(stack: Stack, account: Account) -> int:
    response = await stack.client.post(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    stack.client.cookies.clear()
    fresh = Account(account.user_id, account.email, response.json()["access_token"])
    assert (await stack.poll(JOBS, fresh)).status_code == 200  # the new token holds
    return 401


async def _deactivate_by_admin(stack: Stack, account: Account) -> int:
    admin = await stack.sign_up(admin=True)
    response = await stack.client.patch(
        f"/api/admin/users/{account.user_id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    return 401


@postgres_only
@pytest.mark.parametrize(
    "change", [_submit_a_job, _log_out, _change_password, _deactivate_by_admin]
)
async def test_this_process_sees_its_own_writes_at_once(
    stack: Stack, change: Callable[[Stack, Account], Awaitable[int]]
) -> None:
    """The request that changed the user forgot them before it answered: the very next poll
    is not told "unchanged", even with every notification held back."""
    account = await stack.sign_up()
    await stack.submit(account, "before the poll")
    etags = await stack.warm(account)

    stack.notices.holding = True
    expected = await change(stack, account)

    for path, etag in etags.items():
        response = await stack.poll(path, account, etag)
        assert response.status_code == expected, (path, response.status_code, response.text)
        if expected == 200:
            assert response.headers["etag"] != etag
    if expected == 200:
        listed = (await stack.poll(JOBS, account)).json()
        assert [job["job_name"] for job in listed["jobs"]] == ["after the poll", "before the poll"]
    assert stack.versions.live  # no reconnection forgot them in between


# --- another process's writes: told by NOTIFY ------------------------------------------------


async def _bump_jobs_version(stack: Stack, account: Account) -> int:
    await stack.execute(
        "UPDATE users SET jobs_version = jobs_version + 1 WHERE user_id = :id", id=account.user_id
    )
    return 200


async def _deactivate(stack: Stack, account: Account) -> int:
    await stack.execute(
        "UPDATE users SET is_active = false WHERE user_id = :id", id=account.user_id
    )
    return 401


async def _bump_token_version(stack: Stack, account: Account) -> int:
    await stack.execute(
        "UPDATE users SET token_version = token_version + 1 WHERE user_id = :id",
        id=account.user_id,
    )
    return 401


async def _revoke(stack: Stack, account: Account) -> int:
    token = decode_access_token(account.token, stack.app.state.settings)
    await stack.execute(
        "INSERT INTO revoked_tokens (jti, user_id, expires_at)"
        " VALUES (:jti, :id, now() + interval '1 hour')",
        jti=token.jti,
        id=account.user_id,
    )
    return 401


async def _poll_until_changed(stack: Stack, path: str, account: Account, etag: str) -> int:
    """Revalidate until the answer is no longer 304; fails past NOTICE_BOUND."""
    statuses: list[int] = []

    async def changed() -> bool:
        statuses.append((await stack.poll(path, account, etag)).status_code)
        return statuses[-1] != 304

    await wait_until(changed, NOTICE_BOUND, f"{path} still 304 after {len(statuses)} polls")
    return statuses[-1]


@postgres_only
@pytest.mark.parametrize("change", [_bump_jobs_version, _deactivate, _bump_token_version, _revoke])
async def test_another_process_commit_reaches_the_app_by_notify(
    stack: Stack, change: Callable[[Stack, Account], Awaitable[int]]
) -> None:
    account = await stack.sign_up()
    etags = await stack.warm(account)
    seen = len(stack.notices.seen)

    expected = await change(stack, account)

    for path, etag in etags.items():
        assert await _poll_until_changed(stack, path, account, etag) == expected, path
    assert str(account.user_id) in stack.notices.seen[seen:]


# --- the listener's connection lost ---------------------------------------------------------


@postgres_only
async def test_a_killed_listener_goes_dark_then_comes_back(stack: Stack) -> None:
    """While the listener is gone nothing is answered from memory, so a change committed
    meanwhile (its notification lost) is never hidden by a 304; once it is back, revalidations
    are answered from memory again."""
    account = await stack.sign_up()
    etags = await stack.warm(account)

    async with stack.engine.connect() as connection:
        killed = await connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": LISTENER_NAME},
        )
        assert list(killed.scalars()) == [True]
    await wait_until(lambda: not stack.versions.live, NOTICE_BOUND, "dark after the kill")
    assert len(stack.versions) == 0

    await _bump_jobs_version(stack, account)
    reads_before = stack.reads
    for path, etag in etags.items():
        response = await stack.poll(path, account, etag)
        assert response.status_code == 200, (path, response.status_code)
    assert stack.reads > reads_before
    assert not stack.versions.live  # the change and the polls all fell within the outage

    await stack.wait_live()
    await stack.warm(account)  # asserts the revalidations cost no read again
    assert len(await listener_pids(stack.engine)) == 1


@postgres_only
async def test_a_network_cut_makes_the_listener_dark_within_its_check(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that went silent (no reset, nothing crosses it) is noticed by the ping
    within check_every + timeout; a change committed during the cut is not hidden after it."""
    url = make_url(database_url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        async with running_app(_settings(proxied), engine, monkeypatch) as stack:
            await stack.wait_live()
            account = await stack.sign_up()
            etags = await stack.warm(account)

            await proxy.cut(BLACKHOLE, freeze_existing=True)
            bound = CHECK_EVERY + DB_TIMEOUT + 1.0  # the 1 s: a loaded machine's slack
            elapsed = await wait_until(lambda: not stack.versions.live, bound, "dark after a cut")
            await _bump_jobs_version(stack, account)  # straight to the database
            await proxy.restore()

            await stack.wait_live()
            for path, etag in etags.items():
                response = await stack.poll(path, account, etag)
                assert response.status_code == 200, (path, response.status_code)
            await stack.warm(account)
    print(f"dark {elapsed:.2f} s after the cut")


# --- no listener ----------------------------------------------------------------------------


@postgres_only
@pytest.mark.parametrize(
    "overrides",
    [{"revalidation_cache_users": 0}, {"database_pgbouncer": True}],
    ids=["cache-off", "pgbouncer"],
)
async def test_without_a_listener_every_revalidation_reads_the_database(
    database_url: str,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    overrides: dict[str, Any],
) -> None:
    settings = _settings(database_url, **overrides)
    async with running_app(settings, engine, monkeypatch) as stack:
        assert stack.app.state.change_listener is None
        assert await listener_pids(engine) == []
        account = await stack.sign_up()
        for path in FEEDS:
            etag = await stack.full_get(path, account)
            reads_before = stack.reads
            for _ in range(3):
                assert (await stack.poll(path, account, etag)).status_code == 304
            assert stack.reads == reads_before + 3
        assert not stack.versions.live
        assert len(stack.versions) == 0


# --- shutdown -------------------------------------------------------------------------------


@postgres_only
async def test_shutdown_closes_the_listener_connection(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_app(_settings(database_url), engine, monkeypatch) as stack:
        await stack.wait_live()
        assert len(await listener_pids(engine)) == 1

    assert not stack.versions.live

    async def none_left() -> bool:
        return await listener_pids(engine) == []

    await wait_until(none_left, NOTICE_BOUND, "a jobs-feed-listener connection left")


# --- what the listener checks every second --------------------------------------------------


@postgres_only
async def test_a_disabled_trigger_makes_the_app_dark_and_hides_no_change(stack: Stack) -> None:
    """With a trigger disabled, a change would send no notification: the app must stop
    answering from memory, so that such a change is still seen; enabled again, it goes live."""
    account = await stack.sign_up()
    etags = await stack.warm(account)
    try:
        await stack.execute("ALTER TABLE users DISABLE TRIGGER users_jobs_feed_update")
        bound = CHECK_EVERY + DB_TIMEOUT + 1.0
        await wait_until(lambda: not stack.versions.live, bound, "dark without the trigger")

        await _bump_jobs_version(stack, account)  # no notification is sent for this one
        for path, etag in etags.items():
            assert (await stack.poll(path, account, etag)).status_code == 200, path
    finally:
        await stack.execute("ALTER TABLE users ENABLE TRIGGER users_jobs_feed_update")

    await stack.wait_live()
    await stack.warm(account)  # from memory again


@postgres_only
async def test_when_notifications_do_not_come_back_nothing_is_remembered(
    database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a transaction-mode pooler would do (LISTEN not kept): the probe committed by the
    second connection never reaches the listener, so the app never answers from memory."""
    monkeypatch.setattr(ChangeListener, "_on_probe", lambda *_args: None)
    async with running_app(_settings(database_url), engine, monkeypatch) as stack:
        account = await stack.sign_up()
        etag = await stack.full_get(JOBS, account)
        deadline = time.monotonic() + 2 * (CHECK_EVERY + DB_TIMEOUT)
        polls = 0
        while time.monotonic() < deadline:
            reads_before = stack.reads
            assert (await stack.poll(JOBS, account, etag)).status_code == 304
            assert stack.reads == reads_before + 1
            assert not stack.versions.live
            polls += 1
            await asyncio.sleep(0.1)
        assert polls > 10

"""Revalidations answered from memory while the database's notifications keep it in step
(app/auth/revalidation_cache.py), on the running app: after one full read a revalidation costs
no token check on the database; this process's writes are seen at once; other processes' by
NOTIFY; without a proven listener every request asks the database."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.security import decode_access_token
from tests.auth.listening import (
    CHECK_EVERY,
    DB_TIMEOUT,
    JOBS,
    LISTENER_NAME,
    NEW_PASSWORD,
    NOTICE_BOUND,
    PASSWORD,
    POLLS,
    Account,
    Stack,
    listener_pids,
    listening_settings,
    running_app,
    wait_until,
)
from tests.tcp_proxy import BLACKHOLE, TcpProxy

# Every test here needs PostgreSQL's LISTEN/NOTIFY.
pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def stack(database_url: str, engine: AsyncEngine) -> AsyncIterator[Stack]:
    async with running_app(listening_settings(database_url), engine) as stack:
        await stack.wait_live()
        yield stack


# --- answered from memory -------------------------------------------------------------------


@pytest.mark.parametrize("path", POLLS)
async def test_reads_after_the_first_check_their_token_from_memory(stack: Stack, path: str) -> None:
    account = await stack.sign_up()
    await stack.submit(account, "one")
    await stack.settle()

    reads_before = stack.reads
    etag = await stack.full_get(path, account)
    assert stack.reads == reads_before + 1

    await stack.assert_answered_from_memory(path, account, etag)
    assert await stack.full_get(path, account) == etag
    assert stack.reads == reads_before + 1
    assert stack.cache.live


async def test_a_write_always_checks_its_token_on_the_database(stack: Stack) -> None:
    account = await stack.sign_up()
    await stack.warm(account)

    reads_before = stack.reads
    await stack.submit(account, "a write")

    assert stack.reads == reads_before + 1


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
    assert stack.cache.live  # no reconnection forgot them in between


# --- another process's writes: told by NOTIFY ------------------------------------------------


async def _add_a_job(stack: Stack, account: Account) -> int:
    """A job of the user's written by someone else (a worker, psql): the list and the totals
    change."""
    await stack.execute(
        "INSERT INTO jobs (user_id, job_name, job_type, created_at, updated_at)"
        " VALUES (:id, 'from elsewhere', 'simple', now(), now())",
        id=account.user_id,
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
    token = decode_access_token(account.token, stack.context.settings)
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


@pytest.mark.parametrize("change", [_add_a_job, _deactivate, _bump_token_version, _revoke])
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
    await wait_until(lambda: not stack.cache.live, NOTICE_BOUND, "dark after the kill")
    assert len(stack.cache) == 0

    await _add_a_job(stack, account)
    reads_before = stack.reads
    for path, etag in etags.items():
        response = await stack.poll(path, account, etag)
        assert response.status_code == 200, (path, response.status_code)
    assert stack.reads > reads_before
    assert not stack.cache.live  # the change and the polls all fell within the outage

    await stack.wait_live()
    await stack.warm(account)  # asserts the revalidations cost no read again
    assert len(await listener_pids(stack.engine)) == 1


async def test_a_network_cut_makes_the_listener_dark_within_its_check(
    database_url: str, engine: AsyncEngine
) -> None:
    """A connection that went silent (no reset, nothing crosses it) is noticed by the ping
    within check_every + timeout; a change committed during the cut is not hidden after it."""
    url = make_url(database_url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        async with running_app(listening_settings(proxied), engine) as stack:
            await stack.wait_live()
            account = await stack.sign_up()
            etags = await stack.warm(account)

            await proxy.cut(BLACKHOLE, freeze_existing=True)
            bound = CHECK_EVERY + DB_TIMEOUT + 1.0  # the 1 s: a loaded machine's slack
            elapsed = await wait_until(lambda: not stack.cache.live, bound, "dark after a cut")
            await _add_a_job(stack, account)  # straight to the database
            await proxy.restore()

            await stack.wait_live()
            for path, etag in etags.items():
                response = await stack.poll(path, account, etag)
                assert response.status_code == 200, (path, response.status_code)
            await stack.warm(account)
    print(f"dark {elapsed:.2f} s after the cut")


# --- no listener ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{"revalidation_cache_users": 0}, {"database_pgbouncer": True}],
    ids=["cache-off", "pgbouncer"],
)
async def test_with_nothing_remembered_every_revalidation_reads_the_database(
    database_url: str,
    engine: AsyncEngine,
    overrides: dict[str, Any],
) -> None:
    """Behind PgBouncer no listener runs; with the cache off it runs all the same (the events
    streams are woken by it), and the cache remembers nothing."""
    settings = listening_settings(database_url, **overrides)
    async with running_app(settings, engine) as stack:
        if settings.database_pgbouncer:
            assert stack.context.change_listener is None
            assert await listener_pids(engine) == []
        else:
            await stack.wait_live()
        account = await stack.sign_up()
        for path in POLLS:
            etag = await stack.full_get(path, account)
            reads_before = stack.reads
            for _ in range(3):
                assert (await stack.poll(path, account, etag)).status_code == 304
            assert stack.reads == reads_before + 3
        assert stack.cache.live is not settings.database_pgbouncer
        assert len(stack.cache) == 0


# --- shutdown -------------------------------------------------------------------------------


async def test_shutdown_closes_the_listener_connection(
    database_url: str, engine: AsyncEngine
) -> None:
    async with running_app(listening_settings(database_url), engine) as stack:
        await stack.wait_live()
        assert len(await listener_pids(engine)) == 1

    assert not stack.cache.live

    async def none_left() -> bool:
        return await listener_pids(engine) == []

    await wait_until(none_left, NOTICE_BOUND, "a jobs-feed-listener connection left")


# --- what the listener checks every second --------------------------------------------------


async def test_a_disabled_trigger_makes_the_app_dark_and_hides_no_change(stack: Stack) -> None:
    """With a trigger disabled, a change would send no notification: the app must stop
    answering from memory, so that such a change is still seen; enabled again, it goes live."""
    account = await stack.sign_up()
    etags = await stack.warm(account)
    try:
        await stack.execute("ALTER TABLE jobs DISABLE TRIGGER jobs_jobs_feed")
        bound = CHECK_EVERY + DB_TIMEOUT + 1.0
        await wait_until(lambda: not stack.cache.live, bound, "dark without the trigger")

        await _add_a_job(stack, account)  # dark: its notice is not relied upon
        for path, etag in etags.items():
            assert (await stack.poll(path, account, etag)).status_code == 200, path
    finally:
        await stack.execute("ALTER TABLE jobs ENABLE TRIGGER jobs_jobs_feed")

    await stack.wait_live()
    await stack.warm(account)  # from memory again


async def test_when_notifications_do_not_come_back_nothing_is_remembered(
    database_url: str, engine: AsyncEngine
) -> None:
    """What a transaction-mode pooler would do (LISTEN not kept): the probe committed by the
    second connection never reaches the listener, so the app never answers from memory."""
    async with running_app(listening_settings(database_url), engine) as stack:
        stack.notices.drop_probes = True
        account = await stack.sign_up()
        etag = await stack.full_get(JOBS, account)
        deadline = time.monotonic() + 2 * (CHECK_EVERY + DB_TIMEOUT)
        polls = 0
        while time.monotonic() < deadline:
            reads_before = stack.reads
            assert (await stack.poll(JOBS, account, etag)).status_code == 304
            assert stack.reads == reads_before + 1
            assert not stack.cache.live
            polls += 1
            await asyncio.sleep(0.1)
        assert polls > 10

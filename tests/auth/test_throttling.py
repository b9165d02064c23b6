"""Login throttling: after LOGIN_MAX_FAILURES wrong passwords for one email from one client, every
login for it answers 429 with Retry-After until the window ends; in Redis the count is shared."""

import types
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from httpx import AsyncClient, Response
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth import throttle as throttle_module
from app.auth.throttle import LoginThrottle
from app.models import User
from tests.apps import make_settings, open_app
from tests.factories import PASSWORD, create_user

LOGIN_URL = "/api/auth/login"
TOKEN_URL = "/api/auth/token"
WRONG = "not the password"
REDIS_URL = "redis://127.0.0.1:6379/15"
# What ASGITransport reports as the client's address.
CLIENT = "127.0.0.1"
THROTTLED = {"detail": "Too many failed login attempts; try again later", "success": False}


async def _login(client: AsyncClient, email: str, password: str) -> Response:
    response = await client.post(LOGIN_URL, json={"email": email, "password": password})
    # A successful login stores the cookie; drop it, as each attempt stands for a fresh visitor.
    client.cookies.clear()
    return response


def _assert_throttled(response: Response, window_seconds: int = 900) -> None:
    assert response.status_code == 429
    assert response.json() == THROTTLED
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= window_seconds


def _unique_email() -> str:
    return f"throttle-{uuid.uuid4().hex}@example.com"


@asynccontextmanager
async def _client_for(
    connection: AsyncConnection, database_url: str, **overrides: Any
) -> AsyncIterator[AsyncClient]:
    """A client for an app of its own, built with these settings, in the test's transaction.

    These tests count one account's failures. The client's own budget across emails (tested in
    test_password_check_limits.py) is lifted: in Redis it is shared by every run on the machine
    for a minute, and would refuse these logins for reasons of its own."""
    overrides.setdefault("client_max_password_checks", 1_000_000)
    async with open_app(make_settings(database_url, **overrides), connection=connection) as app:
        yield app.client


@pytest.fixture
async def redis_keys() -> AsyncIterator[list[str]]:
    """Counter keys a test used; deleted afterwards, and nothing else in the database."""
    keys: list[str] = []
    yield keys
    redis = Redis.from_url(REDIS_URL)
    try:
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def _redis_key(email: str) -> str:
    return "login-failures:" + LoginThrottle.key(email, CLIENT)


# With the app's default settings: 5 failures allowed in a 15-minute window.


async def test_the_sixth_attempt_is_refused_even_with_the_right_password(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    for _ in range(5):
        assert (await _login(client, user.email, WRONG)).status_code == 401
    response = await _login(client, user.email, PASSWORD)

    _assert_throttled(response)
    assert "set-cookie" not in response.headers
    assert "access_token" not in response.json()


async def test_the_form_login_shares_the_count_and_the_refusal(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    for _ in range(5):
        assert (await _login(client, user.email, WRONG)).status_code == 401
    # The form's username in another case is the same account, and the same count.
    response = await client.post(
        TOKEN_URL, data={"username": user.email.upper(), "password": PASSWORD}
    )

    _assert_throttled(response)


async def test_the_count_ignores_the_emails_case(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    for attempt in range(5):
        email = user.email.upper() if attempt % 2 else user.email
        assert (await _login(client, email, WRONG)).status_code == 401

    _assert_throttled(await _login(client, user.email.title(), PASSWORD))


async def test_another_email_from_the_same_client_is_unaffected(
    client: AsyncClient, session: AsyncSession
) -> None:
    target = await create_user(session)
    bystander = await create_user(session)
    for _ in range(6):
        await _login(client, target.email, WRONG)

    assert (await _login(client, bystander.email, WRONG)).status_code == 401
    assert (await _login(client, bystander.email, PASSWORD)).status_code == 200
    _assert_throttled(await _login(client, target.email, PASSWORD))


async def test_unknown_emails_are_throttled_like_known_ones(client: AsyncClient) -> None:
    # Otherwise the 429 itself would tell which emails have accounts.
    email = _unique_email()

    for _ in range(5):
        assert (await _login(client, email, WRONG)).status_code == 401

    _assert_throttled(await _login(client, email, WRONG))


async def test_a_successful_login_resets_the_count(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    for _ in range(4):
        assert (await _login(client, user.email, WRONG)).status_code == 401
    assert (await _login(client, user.email, PASSWORD)).status_code == 200
    for _ in range(4):
        assert (await _login(client, user.email, WRONG)).status_code == 401

    assert (await _login(client, user.email, PASSWORD)).status_code == 200


async def test_the_refusal_lasts_until_the_window_ends(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock of the throttle's own, moved by hand: nothing waits, nothing else sees it.
    now = [1000.0]
    monkeypatch.setattr(throttle_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    user = await create_user(session)
    for _ in range(5):
        await _login(client, user.email, WRONG)

    refused = await _login(client, user.email, PASSWORD)
    _assert_throttled(refused)
    assert int(refused.headers["retry-after"]) == 900

    now[0] += 600
    later = await _login(client, user.email, PASSWORD)
    _assert_throttled(later)
    assert int(later.headers["retry-after"]) == 300

    now[0] += 300
    assert (await _login(client, user.email, PASSWORD)).status_code == 200


# With settings of the test's own choosing.


async def test_the_limit_follows_the_setting(
    connection: AsyncConnection, database_url: str, session: AsyncSession
) -> None:
    user = await create_user(session)

    async with _client_for(connection, database_url, login_max_failures=2) as client:
        assert (await _login(client, user.email, WRONG)).status_code == 401
        assert (await _login(client, user.email, WRONG)).status_code == 401
        _assert_throttled(await _login(client, user.email, PASSWORD))


async def test_retry_after_follows_the_window_setting(
    connection: AsyncConnection, database_url: str, session: AsyncSession
) -> None:
    user = await create_user(session)

    async with _client_for(
        connection, database_url, login_max_failures=1, login_failure_window_seconds=30
    ) as client:
        assert (await _login(client, user.email, WRONG)).status_code == 401
        _assert_throttled(await _login(client, user.email, PASSWORD), window_seconds=30)


async def test_in_memory_counts_are_per_instance(
    connection: AsyncConnection, database_url: str, session: AsyncSession
) -> None:
    # The contrast to the Redis store below: without it, each process counts on its own.
    user = await create_user(session)

    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            _client_for(connection, database_url, login_max_failures=2)
        )
        second = await stack.enter_async_context(
            _client_for(connection, database_url, login_max_failures=2)
        )
        for _ in range(2):
            await _login(first, user.email, WRONG)

        _assert_throttled(await _login(first, user.email, PASSWORD))
        assert (await _login(second, user.email, PASSWORD)).status_code == 200


# With the count in Redis.


async def test_redis_store_throttles_and_resets(
    connection: AsyncConnection, database_url: str, session: AsyncSession, redis_keys: list[str]
) -> None:
    user = await create_user(session, email=_unique_email())
    redis_keys.append(_redis_key(user.email))

    async with _client_for(
        connection, database_url, login_max_failures=2, redis_url=REDIS_URL
    ) as client:
        # A success before the limit starts the count over.
        assert (await _login(client, user.email, WRONG)).status_code == 401
        assert (await _login(client, user.email, PASSWORD)).status_code == 200
        assert (await _login(client, user.email, WRONG)).status_code == 401
        assert (await _login(client, user.email, PASSWORD)).status_code == 200

        assert (await _login(client, user.email, WRONG)).status_code == 401
        assert (await _login(client, user.email, WRONG)).status_code == 401
        _assert_throttled(await _login(client, user.email, PASSWORD))


async def test_redis_count_is_shared_by_every_instance(
    connection: AsyncConnection, database_url: str, session: AsyncSession, redis_keys: list[str]
) -> None:
    user: User = await create_user(session, email=_unique_email())
    bystander: User = await create_user(session, email=_unique_email())
    redis_keys += [_redis_key(user.email), _redis_key(bystander.email)]

    async with AsyncExitStack() as stack:
        instance_a = await stack.enter_async_context(
            _client_for(connection, database_url, login_max_failures=2, redis_url=REDIS_URL)
        )
        instance_b = await stack.enter_async_context(
            _client_for(connection, database_url, login_max_failures=2, redis_url=REDIS_URL)
        )

        assert (await _login(instance_a, user.email, WRONG)).status_code == 401
        assert (await _login(instance_b, user.email, WRONG)).status_code == 401
        _assert_throttled(await _login(instance_b, user.email, PASSWORD))
        _assert_throttled(await _login(instance_a, user.email, PASSWORD))

        # Another email is counted apart, on both instances.
        assert (await _login(instance_a, bystander.email, WRONG)).status_code == 401
        assert (await _login(instance_b, bystander.email, PASSWORD)).status_code == 200


async def test_a_redis_count_outlives_the_instance_that_made_it(
    connection: AsyncConnection, database_url: str, session: AsyncSession, redis_keys: list[str]
) -> None:
    # A restart (or a deploy) does not hand an attacker a fresh set of attempts.
    user = await create_user(session, email=_unique_email())
    redis_keys.append(_redis_key(user.email))
    settings = {"login_max_failures": 2, "redis_url": REDIS_URL}

    async with _client_for(connection, database_url, **settings) as before_restart:
        for _ in range(2):
            assert (await _login(before_restart, user.email, WRONG)).status_code == 401

    async with _client_for(connection, database_url, **settings) as after_restart:
        _assert_throttled(await _login(after_restart, user.email, PASSWORD))

"""The running app with its change listener, for tests/auth/test_change_listener.py.

The app runs with its lifespan, so ChangeListener LISTENs on `jobs_feed`, on committed data:
nothing is rolled back, so each test signs up users of its own and deletes them at the end.
The app's token checks on the database are counted with SQLAlchemy's statement events. The
listener's connections relay notifications through the test's `Notices`, so a test knows what
the app heard: `settle()` waits until every notification committed so far has arrived
(PostgreSQL delivers them in commit order).
"""

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.revalidation_cache import (
    CHANNEL,
    LISTENER_NAME,
    ChangeListener,
    RevalidationCache,
)
from app.context import AppContext
from app.core.config import Settings
from app.core.db import asyncpg_connect_kwargs
from tests.apps import make_settings, open_app

SECRET_KEY = "revalidation-test-secret-key-0123456789"
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse battery"
JOBS = "/api/users/jobs"
STATS = "/api/users/jobs/stats"
POLLS = (JOBS, STATS)
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
    not acted upon, so only the app's own bookkeeping can make it forget. With `drop_probes`
    the listener never hears its own probes, as behind a pooler that does not keep LISTEN."""

    seen: list[str] = field(default_factory=list)
    holding: bool = False
    drop_probes: bool = False


class _Relayed:
    """An asyncpg connection whose notifications pass the test's Notices first: what asyncpg
    hands the listener is all that is intercepted."""

    def __init__(self, connection: asyncpg.Connection, notices: Notices) -> None:
        self._connection = connection
        self._notices = notices

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def add_listener(self, channel: str, callback: Callable[..., None]) -> None:
        notices = self._notices

        def relay(connection: object, pid: int, name: str, payload: str) -> None:
            if name == CHANNEL:
                notices.seen.append(payload)
                if notices.holding:
                    return
            elif notices.drop_probes:
                return
            callback(connection, pid, name, payload)

        await self._connection.add_listener(channel, relay)


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
    reads: int = 0  # the app's token checks on the database

    @property
    def context(self) -> AppContext:
        context: AppContext = self.app.state.context
        return context

    @property
    def cache(self) -> RevalidationCache:
        return self.context.revalidation_cache

    async def sign_up(self, *, admin: bool = False) -> Account:
        email = f"revalidation-{uuid.uuid4().hex[:12]}@example.com"
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
        return await wait_until(lambda: self.cache.live, RECONNECT_BOUND, "listener live")

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
        """Every notification heard, then each poll read once: its ETag, now remembered."""
        await self.settle()
        etags = {path: await self.full_get(path, account) for path in POLLS}
        for path, etag in etags.items():
            await self.assert_answered_from_memory(path, account, etag)
        return etags


def listening_settings(database_url: str, **overrides: Any) -> Settings:
    return make_settings(
        database_url,
        secret_key=SECRET_KEY,
        database_timeout_seconds=DB_TIMEOUT,
        database_statement_timeout_seconds=2,
        **overrides,
    )


def _relaying_listener(context: AppContext, notices: Notices) -> ChangeListener:
    """The listener the app would start, on connections that relay through `notices`."""
    settings = context.settings
    connect_kwargs = asyncpg_connect_kwargs(context.database.engine, settings)
    server_settings = connect_kwargs.pop("server_settings", {})

    async def connect(name: str) -> Any:
        connection = await asyncpg.connect(
            **connect_kwargs, server_settings={**server_settings, "application_name": name}
        )
        return _Relayed(connection, notices)

    return ChangeListener(
        [context.revalidation_cache, context.event_hub], connect, timeout=DB_TIMEOUT
    )


def _is_token_check(statement: str) -> bool:
    return "revoked_tokens" in statement and statement.lstrip().upper().startswith("SELECT")


@asynccontextmanager
async def running_app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Stack]:
    """The app with its lifespan running (the listener started); its users deleted after."""
    notices = Notices()
    emails: list[str] = []

    def prepare(context: AppContext) -> None:
        if context.change_listener is not None:
            context.change_listener = _relaying_listener(context, notices)

    async with open_app(settings, lifespan=True, before_start=prepare) as running:
        stack = Stack(
            app=running.app, client=running.client, engine=engine, notices=notices, emails=emails
        )

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if _is_token_check(statement):
                stack.reads += 1

        app_engine = running.context.database.engine.sync_engine
        event.listen(app_engine, "before_cursor_execute", count)
        try:
            yield stack
        finally:
            event.remove(app_engine, "before_cursor_execute", count)
            if emails:
                await stack.execute("DELETE FROM users WHERE email = ANY(:emails)", emails=emails)


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

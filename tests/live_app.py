"""An app on its real engine, for tests of real concurrency on PostgreSQL: each request runs in
its own transaction on its own pooled connection and commits for real. Users made through it
are deleted afterwards (their jobs go with them by cascade). Clients can claim any address, as
callers behind different machines would."""

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import create_sessionmaker, dispose_database
from app.main import create_app
from app.models import User
from tests.conftest import TEST_SECRET_KEY
from tests.factories import create_user


@dataclass
class LiveApp:
    app: FastAPI
    settings: Settings
    engine: AsyncEngine  # the test's own, for arranging and checking committed data
    stack: AsyncExitStack
    emails: list[str] = field(default_factory=list)

    async def client(self, address: str = "127.0.0.1") -> AsyncClient:
        transport = ASGITransport(app=self.app, raise_app_exceptions=False, client=(address, 4321))
        return await self.stack.enter_async_context(
            AsyncClient(transport=transport, base_url="https://testserver")
        )

    def email(self, prefix: str) -> str:
        email = f"live-{prefix}-{uuid.uuid4().hex[:12]}@example.com"
        self.emails.append(email)
        return email

    async def user(self, prefix: str, **attributes: Any) -> User:
        async with create_sessionmaker(self.engine)() as session:
            return await create_user(session, email=self.email(prefix), **attributes)

    async def fresh(self, user_id: int) -> User:
        async with create_sessionmaker(self.engine)() as session:
            found = await session.scalar(select(User).where(User.user_id == user_id))
            assert found is not None
            return found


@asynccontextmanager
async def live_app(
    database_url: str, engine: AsyncEngine, **overrides: Any
) -> AsyncIterator[LiveApp]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        database_pool_size=20,
        database_max_overflow=10,
        database_timeout_seconds=10,
        **overrides,
    )
    app = create_app(settings)
    async with AsyncExitStack() as stack:
        live = LiveApp(app=app, settings=settings, engine=engine, stack=stack)
        try:
            yield live
        finally:
            await stack.aclose()
            await dispose_database(app.state)
            await app.state.login_throttle.counter.close()
            if live.emails:
                async with engine.begin() as connection:
                    await connection.execute(delete(User).where(User.email.in_(live.emails)))

"""An app on its real engine, for tests of real concurrency on PostgreSQL: each request runs in
its own transaction on its own pooled connection and commits for real. Users made through it
are deleted afterwards (their jobs go with them by cascade). Clients can claim any address, as
callers behind different machines would."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from httpx import AsyncClient
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.db import create_sessionmaker
from app.models import User
from tests.apps import OpenApp, make_settings, open_app
from tests.factories import create_user


@dataclass
class LiveApp:
    opened: OpenApp
    engine: AsyncEngine  # the test's own, for arranging and checking committed data
    emails: list[str] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.opened.settings

    async def client(self, address: str = "127.0.0.1") -> AsyncClient:
        return await self.opened.client_at(address)

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
    database_url: str, engine: AsyncEngine, *, lifespan: bool = False, **overrides: Any
) -> AsyncIterator[LiveApp]:
    """`lifespan`: run start-up and shutdown too (the change listener; on SQLite, the
    embedded worker)."""
    settings = make_settings(
        database_url,
        **{
            "database_pool_size": 20,
            "database_max_overflow": 10,
            "database_timeout_seconds": 10,
            **overrides,
        },
    )
    async with open_app(settings, lifespan=lifespan, raise_app_exceptions=False) as opened:
        live = LiveApp(opened=opened, engine=engine)
        try:
            yield live
        finally:
            if live.emails:
                async with engine.begin() as connection:
                    await connection.execute(delete(User).where(User.email.in_(live.emails)))

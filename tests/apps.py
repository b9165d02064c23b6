"""The one way tests run the app in-process: `open_app()` builds it with the test's settings,
optionally on one connection (the test's rolled-back transaction) and with its lifespan, gives
an HTTP client over ASGI, and closes everything at the end, whatever happened."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection

from app.context import AppContext
from app.core.config import Settings
from app.main import close_context, create_app
from tests.ops.servers import free_port

BASE_URL = "https://testserver"


@dataclass
class OpenApp:
    app: FastAPI
    client: AsyncClient
    settings: Settings
    stack: AsyncExitStack
    raise_app_exceptions: bool = True
    server_url: str | None = None

    async def client_at(self, address: str) -> AsyncClient:
        """Another client of the same app, calling from `address` (as callers behind different
        machines would); closed with the app."""
        transport = ASGITransport(
            app=self.app, raise_app_exceptions=self.raise_app_exceptions, client=(address, 4321)
        )
        return await self.stack.enter_async_context(
            AsyncClient(transport=transport, base_url=BASE_URL)
        )

    async def client_over_tcp(self) -> AsyncClient:
        """A client of the same app through a real HTTP server (uvicorn on a loopback port, in
        this event loop), for answers that stream: the ASGI transport hands over a response
        only once it has ended. The server stops with the app."""
        if self.server_url is None:
            self.server_url = await self._serve()
        return await self.stack.enter_async_context(AsyncClient(base_url=self.server_url))

    async def _serve(self) -> str:
        port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=port,
            lifespan="off",  # open_app's, if any
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())

        async def stop() -> None:
            self.context.event_hub.close()  # open event streams end rather than hold the stop
            server.should_exit = True
            await serving

        self.stack.push_async_callback(stop)
        while not server.started:
            if serving.done():
                serving.result()  # its error, if it failed to start
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    @property
    def context(self) -> AppContext:
        context: AppContext = self.app.state.context
        return context


TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "cors_origins": ["http://localhost:3000"],
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@asynccontextmanager
async def open_app(
    settings: Settings,
    *,
    connection: AsyncConnection | None = None,
    lifespan: bool = False,
    raise_app_exceptions: bool = True,
    before_start: Callable[[AppContext], None] | None = None,
) -> AsyncIterator[OpenApp]:
    """`connection`: every request's session joins it with a savepoint, so the test's rollback
    undoes what requests committed; without it the app uses its own engine and commits for
    real. `lifespan`: run start-up and shutdown (the change listener). Without it the app's
    resources are closed here. `raise_app_exceptions=False`: a 500 reaches the client as a
    response, as it would over HTTP. `before_start` may replace parts of the app's context
    before anything runs."""
    app = create_app(settings)
    context: AppContext = app.state.context
    if connection is not None:
        context.database.install_sessionmakers(connection, join_transaction_mode="create_savepoint")
    if before_start is not None:
        before_start(context)
    async with AsyncExitStack() as stack:
        if lifespan:
            await stack.enter_async_context(app.router.lifespan_context(app))
        else:
            stack.push_async_callback(close_context, context)
        transport = ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        client = await stack.enter_async_context(
            AsyncClient(transport=transport, base_url=BASE_URL)
        )
        yield OpenApp(
            app=app,
            client=client,
            settings=settings,
            stack=stack,
            raise_app_exceptions=raise_app_exceptions,
        )

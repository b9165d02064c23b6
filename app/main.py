"""The ASGI application: `app.main:app`."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware import Middleware

from app import health
from app.auth.cookies import ACCESS_TOKEN_COOKIE
from app.auth.metrics import FAILED_LOGINS
from app.auth.revalidation_cache import RevalidationCache, create_change_listener
from app.auth.router import account_router
from app.auth.router import admin_router as admin_users_router
from app.auth.router import router as auth_router
from app.auth.throttle import create_login_throttle
from app.context import AppContext
from app.core.access_log import AccessLogMiddleware
from app.core.body_limit import BodyLimitMiddleware
from app.core.config import Settings, get_settings, warn_about_unsafe_defaults
from app.core.csrf import CSRFMiddleware
from app.core.db import create_database
from app.core.errors import UnhandledErrorMiddleware, install_error_handlers
from app.core.logs import configure_logging
from app.core.metrics import app_registry, metrics_router
from app.core.security import configure_password_hashing
from app.core.security_headers import SecurityHeadersMiddleware
from app.core.shutdown import on_stop_signal
from app.docs import install_docs
from app.jobs.embedded import EmbeddedWorker
from app.jobs.engine import EmbeddedWorkQueue, create_work_queue
from app.jobs.events import EventHub
from app.jobs.metrics import JOBS_SUBMITTED
from app.jobs.router import admin_router as admin_jobs_router
from app.jobs.router import router as jobs_router
from app.jobs.router import types_router as job_types_router

DESCRIPTION = """
The API behind a "my jobs" dashboard. Log in with **Authorize** (email as username), then try
`GET /api/users/jobs`. Browsers use the HTTP-only cookie set by `POST /api/auth/login` instead.
"""


def create_context(settings: Settings) -> AppContext:
    database = create_database(settings)
    # Revalidations answered from memory while the database's change notifications arrive.
    revalidation_cache = RevalidationCache(settings.revalidation_cache_users)
    # Job event streams, woken by what this process commits and by the others' notices.
    event_hub = EventHub(settings.event_streams_per_user)
    # In this order: a woken stream checks its token against the cache.
    database.after_session += [
        revalidation_cache.forget_changed_users,
        event_hub.wake_changed_users,
    ]
    metrics, pool_collector = app_registry(database.engine, JOBS_SUBMITTED, FAILED_LOGINS)
    # Where submits queue their work; on SQLite this process also runs it.
    work_queue = create_work_queue(settings)
    embedded_worker = (
        EmbeddedWorker(database.engine, settings, work_queue, database.after_session)
        if isinstance(work_queue, EmbeddedWorkQueue) and embedded_worker_allowed(settings)
        else None
    )
    return AppContext(
        settings=settings,
        database=database,
        login_throttle=create_login_throttle(settings),
        revalidation_cache=revalidation_cache,
        change_listener=create_change_listener(
            database.engine, settings, [revalidation_cache, event_hub]
        ),
        metrics=metrics,
        pool_collector=pool_collector,
        work_queue=work_queue,
        embedded_worker=embedded_worker,
        event_hub=event_hub,
    )


def middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: the order a request meets them in."""
    return [
        Middleware(
            CorrelationIdMiddleware, header_name="X-Request-ID", validator=is_sane_request_id
        ),
        Middleware(AccessLogMiddleware),
        Middleware(SecurityHeadersMiddleware),
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-Request-ID"],
            expose_headers=["ETag", "X-Request-ID", "Retry-After"],
        ),
        # The last-resort error renderer sits inside CORS, so a browser can read a 500.
        Middleware(UnhandledErrorMiddleware),
        Middleware(
            CSRFMiddleware, trusted_origins=settings.cors_origins, cookie_name=ACCESS_TOKEN_COOKIE
        ),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    warn_about_unsafe_defaults(settings)
    configure_password_hashing(
        settings.password_hash_concurrency, settings.password_hash_max_wait_seconds
    )
    context = create_context(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What start-up built (routes, models, schemas) lives as long as the process. A full
        # garbage collection walks all of it, a pause every request in flight waits out;
        # frozen, the collector skips it.
        gc.collect()
        gc.freeze()
        if context.change_listener is not None:
            context.change_listener.start()
        if context.embedded_worker is not None:
            await context.embedded_worker.start()
        # The server waits for open responses before it stops: event streams end when told.
        restore_signal_handlers = on_stop_signal(context.event_hub.close)
        yield
        restore_signal_handlers()
        await close_context(context)

    app = FastAPI(
        title="Jobs Dashboard API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
        middleware=middleware(settings),
        # Starlette would answer `/path/` with a redirect to `/path` built from the Host header
        # (an absolute URL any client can point elsewhere, and `//host/` becomes an open
        # redirect). A URL that is not a route is a 404.
        redirect_slashes=False,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    app.state.context = context
    install_error_handlers(app)
    for router in (
        health.router,
        auth_router,
        account_router,
        jobs_router,
        job_types_router,
        admin_jobs_router,
        admin_users_router,
    ):
        app.include_router(router)
    if settings.metrics_enabled:
        app.include_router(
            metrics_router(settings.metrics_token, context.metrics, context.pool_collector)
        )
    return app


async def close_context(context: AppContext) -> None:
    """What the lifespan's shutdown closes (tests without a lifespan call it themselves)."""
    context.event_hub.close()
    if context.embedded_worker is not None:
        await context.embedded_worker.stop()
    if context.change_listener is not None:
        await context.change_listener.stop()
    await context.login_throttle.counter.close()
    await context.database.engine.dispose()


def embedded_worker_allowed(settings: Settings) -> bool:
    if not settings.embedded_worker:
        return False
    if settings.web_concurrency > 1:
        # Each process would queue every unfinished job again at start-up and run it too.
        logging.getLogger(__name__).warning(
            "jobs are not run: the embedded worker (SQLite) needs WEB_CONCURRENCY=1; "
            "for more processes use PostgreSQL and `python -m app worker`"
        )
        return False
    return True


def is_sane_request_id(value: str) -> bool:
    """An incoming X-Request-ID is kept if it is short and plain; otherwise one is made."""
    return 0 < len(value) <= 128 and all(
        c.isascii() and (c.isalnum() or c in "-_.:") for c in value
    )


app = create_app()

"""The ASGI application: `app.main:app`."""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import health
from app.auth.cookies import ACCESS_TOKEN_COOKIE
from app.auth.router import router as auth_router
from app.auth.throttle import create_login_throttle
from app.core.access_log import AccessLogMiddleware
from app.core.body_limit import BodyLimitMiddleware
from app.core.config import Settings, get_settings, warn_about_unsafe_defaults
from app.core.csrf import CSRFMiddleware
from app.core.db import create_app_engine, dispose_database, install_sessionmakers
from app.core.errors import UnhandledErrorMiddleware, install_error_handlers
from app.core.logs import configure_logging
from app.core.metrics import app_registry, metrics_router
from app.core.security_headers import SecurityHeadersMiddleware
from app.jobs.embedded import EmbeddedWorker
from app.jobs.engine import EmbeddedWorkQueue, create_work_queue
from app.jobs.fast_path import DashboardFastPath
from app.jobs.revalidation_cache import RevalidationCache, create_change_listener
from app.jobs.router import admin_router as admin_jobs_router
from app.jobs.router import router as jobs_router
from app.jobs.router import types_router as job_types_router
from app.users.router import admin_router as admin_users_router
from app.users.router import router as users_router

DESCRIPTION = """
The API behind a "my jobs" dashboard. Log in with **Authorize** (email as username), then try
`GET /api/users/jobs`. Browsers use the HTTP-only cookie set by `POST /api/auth/login` instead.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    warn_about_unsafe_defaults(settings)
    engine = create_app_engine(settings)
    # The dashboard's revalidations, answered from memory while the database's change
    # notifications arrive (app/jobs/revalidation_cache.py).
    revalidation_cache = RevalidationCache(settings.revalidation_cache_users)
    change_listener = create_change_listener(engine, settings, revalidation_cache)
    # Where submits queue their work; on SQLite this process also runs it.
    work_queue = create_work_queue(settings)
    embedded_worker = (
        EmbeddedWorker(engine, settings, work_queue)
        if isinstance(work_queue, EmbeddedWorkQueue) and embedded_worker_allowed(settings)
        else None
    )
    login_throttle = create_login_throttle(
        settings.redis_url, settings.login_max_failures, settings.login_failure_window_seconds
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What start-up built (about 120k objects: routes, models, schemas) lives as long as
        # the process. A full garbage collection walked all of it, a ~30 ms pause that every
        # request in flight waited out; frozen, the collector skips it.
        gc.collect()
        gc.freeze()
        if change_listener is not None:
            change_listener.start()
        if embedded_worker is not None:
            await embedded_worker.start()
        yield
        if embedded_worker is not None:
            await embedded_worker.stop()
        if change_listener is not None:
            await change_listener.stop()
        await login_throttle.counter.close()
        await dispose_database(app.state)

    app = FastAPI(
        title="Jobs Dashboard API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    app.state.settings = settings
    app.state.engine = engine
    install_sessionmakers(app.state, engine)
    app.state.revalidation_cache = revalidation_cache
    app.state.forget_changed_users = revalidation_cache.forget
    app.state.change_listener = change_listener
    app.state.login_throttle = login_throttle
    app.state.work_queue = work_queue
    app.state.metrics_registry, app.state.pool_collector = app_registry(engine)

    install_error_handlers(app)
    # Added innermost first. A request meets: its request id, the access log, the security
    # headers, CORS, the last-resort error renderer, the CSRF check, the body limit and the
    # dashboard polls' fast path, then the route.
    app.add_middleware(DashboardFastPath, cookie_name=ACCESS_TOKEN_COOKIE)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CSRFMiddleware, trusted_origins=settings.cors_origins, cookie_name=ACCESS_TOKEN_COOKIE
    )
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-Request-ID"],
        expose_headers=["ETag", "X-Request-ID", "Retry-After"],
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(
        CorrelationIdMiddleware, header_name="X-Request-ID", validator=is_sane_request_id
    )
    for router in (
        health.router,
        auth_router,
        users_router,
        jobs_router,
        job_types_router,
        admin_jobs_router,
        admin_users_router,
    ):
        app.include_router(router)
    if settings.metrics_enabled:
        app.include_router(metrics_router(settings.metrics_token))
    return app


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

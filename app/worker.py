"""`python -m app worker`: runs jobs from the queue, configured by the same settings as the API.

Any number of these, on any number of machines, share one PostgreSQL. On SIGTERM (or SIGINT) a
worker takes no new work, gives jobs in flight WORKER_SHUTDOWN_GRACE_SECONDS to finish, and
puts the rest back in the queue. When the database goes away the worker keeps trying to
reconnect; work it held meanwhile is taken back once its heartbeat is stale.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import procrastinate
from prometheus_client import start_http_server

from app.core.config import Settings
from app.core.db import create_app_engine, create_sessionmaker, is_sqlite
from app.core.logs import configure_logging
from app.jobs.engine import PostgresWorkQueue, create_engine_app
from app.jobs.runner import WorkerRuntime, refresh_queue_depth

logger = logging.getLogger("app.worker")

# After the database was lost, the worker tries again this often.
RECONNECT_SECONDS = 2.0
QUEUE_DEPTH_SECONDS = 5.0


async def _watch_queue_depth(runtime: WorkerRuntime) -> None:
    while True:
        with contextlib.suppress(Exception):  # a metric may lag; the worker must not stop
            await refresh_queue_depth(runtime)
        await asyncio.sleep(QUEUE_DEPTH_SECONDS)


async def run_worker(settings: Settings) -> None:
    if is_sqlite(settings.database_url):
        raise SystemExit(
            "python -m app worker needs PostgreSQL (DATABASE_URL); on SQLite the API process "
            "runs jobs itself"
        )
    # Each step of a run is one statement in the usual case (app/jobs/runner.py).
    engine = create_app_engine(settings, autocommit=True)
    runtime = WorkerRuntime(sessionmaker=create_sessionmaker(engine), queue=PostgresWorkQueue())
    app = create_engine_app(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    depth = asyncio.create_task(_watch_queue_depth(runtime))
    logger.info("worker starting (concurrency %d)", settings.worker_concurrency)
    try:
        while not stopping.is_set():
            try:
                await _run_until_stopped(app, settings, runtime, stopping)
            except Exception as exc:  # the database went away, or never came
                logger.warning("worker lost the database (%s); retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), RECONNECT_SECONDS)
    finally:
        depth.cancel()
        await engine.dispose()
    logger.info("worker stopped")


async def _run_until_stopped(
    app: procrastinate.App, settings: Settings, runtime: WorkerRuntime, stopping: asyncio.Event
) -> None:
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                concurrency=settings.worker_concurrency,
                # Our own handlers set `stopping`; procrastinate's would stop only itself.
                install_signal_handlers=False,
                shutdown_graceful_timeout=settings.worker_shutdown_grace_seconds,
                update_heartbeat_interval=settings.worker_heartbeat_seconds,
                stalled_worker_timeout=settings.worker_stalled_seconds,
                # LISTEN/NOTIFY brings new work and aborts at once; polling is the backstop.
                fetch_job_polling_interval=1.0,
                abort_job_polling_interval=1.0,
                additional_context={"runtime": runtime},
            ),
            name="worker",
        )
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({worker, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not worker.done():
            # Cancelling run_worker_async is procrastinate's graceful stop.
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        stop.cancel()
        if not stopping.is_set():
            worker.result()  # the worker ended by itself: raise why
            raise RuntimeError("the worker stopped unexpectedly")


def main(settings: Settings) -> None:
    configure_logging(settings)
    if settings.worker_metrics_port is not None:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        runner.run(run_worker(settings))


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (uvicorn[standard] brings it, and the API runs on it):
    asyncio's own loop spent a visible share of a busy worker in its selector and socket
    writes."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop

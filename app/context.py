"""What the app holds for its lifetime: built once by create_app() (app/main.py) and kept as
`app.state.context`, the only attribute it sets there."""

from dataclasses import dataclass

from fastapi import Request
from prometheus_client import CollectorRegistry

from app.auth.revalidation_cache import ChangeListener, RevalidationCache
from app.auth.throttle import LoginThrottle
from app.core.config import Settings
from app.core.db import Database
from app.core.metrics import PoolCollector
from app.jobs.embedded import EmbeddedWorker
from app.jobs.engine import WorkQueue
from app.jobs.events import EventHub


@dataclass(slots=True)
class AppContext:
    settings: Settings
    database: Database
    login_throttle: LoginThrottle
    revalidation_cache: RevalidationCache
    change_listener: ChangeListener | None
    metrics: CollectorRegistry
    pool_collector: PoolCollector
    # Where submits queue their work (app/jobs/engine.py).
    work_queue: WorkQueue
    # On SQLite, the worker inside this process (started and stopped by the lifespan).
    embedded_worker: EmbeddedWorker | None
    # The open job event streams, woken by changes (app/jobs/events.py).
    event_hub: EventHub


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context

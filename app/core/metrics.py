"""Prometheus metrics. `/metrics` is off unless METRICS_ENABLED, and behind METRICS_TOKEN."""

import os
import secrets
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.core.errors import NotAuthenticated

# Registered per app (app_registry), not in prometheus-client's global registry.
REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered",
    ["method", "route", "status"],
    registry=None,
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)


class PoolCollector(Collector):
    """Database connection pool use, read when scraped."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self.engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return
        in_use = GaugeMetricFamily("db_pool_connections_in_use", "Connections checked out")
        in_use.add_metric([], pool.checkedout())
        idle = GaugeMetricFamily("db_pool_connections_idle", "Connections idle in the pool")
        idle.add_metric([], pool.checkedin())
        size = GaugeMetricFamily("db_pool_size", "Configured pool size")
        size.add_metric([], pool.size())
        yield from (in_use, idle, size)


def metrics_router(
    token: str | None, registry: CollectorRegistry, pool_collector: PoolCollector
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        if token is not None:
            supplied = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not secrets.compare_digest(supplied.encode(), token.encode()):
                raise NotAuthenticated
        return Response(
            generate_latest(_registry(registry, pool_collector)), media_type=CONTENT_TYPE_LATEST
        )

    return router


def _registry(registry: CollectorRegistry, pool_collector: PoolCollector) -> CollectorRegistry:
    # With several workers each keeps its own counts; prometheus-client's multiprocess mode
    # (PROMETHEUS_MULTIPROC_DIR) adds them up across workers.
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        combined.register(pool_collector)
        return combined
    return registry


def app_registry(
    engine: AsyncEngine, *collectors: Collector
) -> tuple[CollectorRegistry, PoolCollector]:
    """The request metrics, the features' `collectors` and this app's pool."""
    registry = CollectorRegistry()
    for collector in (REQUESTS, LATENCY, *collectors):
        registry.register(collector)
    pool_collector = PoolCollector(engine)
    registry.register(pool_collector)
    return registry, pool_collector

"""Prometheus metrics: off by default; behind METRICS_TOKEN when on; request counts by route
template and status, latency buckets, pool gauges, submitted jobs by type, failed logins."""

import uuid
from collections.abc import Iterable

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import QueuePool

from app.core.config import Settings
from tests.apps import OpenApp
from tests.factories import bearer, create_job, create_user
from tests.ops.conftest import AppBuilder

TOKEN = "ops-metrics-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB_ROUTE = "/api/users/jobs/{job_id}"


async def _scrape(ops: OpenApp) -> list[Sample]:
    response = await ops.client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def _value(samples: Iterable[Sample], name: str, **labels: str) -> float:
    """The sample's value, 0 when it is absent (a counter not yet incremented)."""
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return 0.0


def _increase(before: Iterable[Sample], after: Iterable[Sample], name: str, **labels: str) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


def _names(samples: Iterable[Sample]) -> set[str]:
    return {sample.name for sample in samples}


async def test_metrics_are_off_by_default(build_app: AppBuilder) -> None:
    ops = await build_app()
    assert ops.settings.metrics_enabled is False

    assert (await ops.client.get("/metrics")).status_code == 404
    assert (await ops.client.get("/metrics", headers=AUTH)).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "wrong", "longer", "basic-scheme", "empty"],
)
async def test_metrics_want_the_token(build_app: AppBuilder, headers: dict[str, str]) -> None:
    ops = await build_app(metrics_enabled=True, metrics_token=TOKEN)

    response = await ops.client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.json()["success"] is False
    assert "http_requests_total" not in response.text


async def test_metrics_are_not_in_the_openapi_schema(build_app: AppBuilder) -> None:
    ops = await build_app(metrics_enabled=True, metrics_token=TOKEN)
    schema = (await ops.client.get("/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_requests_are_counted_by_route_template_and_status(
    build_app: AppBuilder, session: AsyncSession
) -> None:
    ops = await build_app(metrics_enabled=True, metrics_token=TOKEN)
    user = await create_user(session)
    job = await create_job(session, user)
    before = await _scrape(ops)
    ok = {"method": "GET", "route": JOB_ROUTE, "status": "200"}
    missing = {"method": "GET", "route": JOB_ROUTE, "status": "404"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}

    auth = bearer(user, ops.settings)
    for _ in range(3):
        ok_response = await ops.client.get(f"/api/users/jobs/{job.job_id}", headers=auth)
        assert ok_response.status_code == 200
    assert (await ops.client.get("/api/users/jobs/999999999", headers=auth)).status_code == 404
    assert (await ops.client.get(f"/no/such/path/{uuid.uuid4().hex}")).status_code == 404
    after = await _scrape(ops)

    assert _increase(before, after, "http_requests_total", **ok) == 3
    assert _increase(before, after, "http_requests_total", **missing) == 1
    assert _increase(before, after, "http_requests_total", **unmatched) == 1
    # No label holds a concrete path: the id and the random path stay out of the metrics.
    routes = {s.labels.get("route") for s in after if s.name.startswith("http_request")}
    assert not any(route and ("/999999999" in route or "/no/such" in route) for route in routes)
    assert f"/api/users/jobs/{job.job_id}" not in routes


async def test_latency_is_a_histogram_with_buckets(build_app: AppBuilder) -> None:
    ops = await build_app(metrics_enabled=True, metrics_token=TOKEN)
    assert (await ops.client.get("/healthz")).status_code == 200

    samples = await _scrape(ops)

    buckets = [
        s
        for s in samples
        if s.name == "http_request_duration_seconds_bucket"
        and s.labels.get("route") == "/healthz"
        and s.labels.get("method") == "GET"
    ]
    bounds = [s.labels["le"] for s in buckets]
    assert bounds[-1] == "+Inf"
    assert len(bounds) > 5
    values = [s.value for s in buckets]
    assert values == sorted(values)  # cumulative
    assert values[-1] >= 1
    count = _value(samples, "http_request_duration_seconds_count", method="GET", route="/healthz")
    assert count == values[-1]
    assert "http_request_duration_seconds_sum" in _names(samples)


async def test_submitted_jobs_are_counted_by_type(
    build_app: AppBuilder, session: AsyncSession
) -> None:
    ops = await build_app(metrics_enabled=True, metrics_token=TOKEN)
    user = await create_user(session)
    job_type = label = "simple"
    before = await _scrape(ops)

    response = await ops.client.post(
        "/api/users/jobs",
        json={"job_name": "counted", "job_type": job_type},
        headers=bearer(user, ops.settings),
    )
    assert response.status_code == 201
    after = await _scrape(ops)

    assert _increase(before, after, "jobs_submitted_total", job_type=label) == 1
    assert any(s.name == "jobs_submitted_total" and s.labels == {"job_type": label} for s in after)


async def test_failed_logins_are_counted(build_app: AppBuilder, session: AsyncSession) -> None:
    ops = await build_app(metrics_enabled=True, metrics_token=TOKEN)
    user = await create_user(session)
    before = await _scrape(ops)

    response = await ops.client.post(
        "/api/auth/login", json={"email": user.email, "password": "not the password"}
    )
    assert response.status_code == 401
    after = await _scrape(ops)

    assert _increase(before, after, "login_failures_total", reason="invalid_credentials") == 1


async def test_pool_gauges_follow_the_engine_pool(build_app: AppBuilder, database_url: str) -> None:
    ops = await build_app(metrics_enabled=True, metrics_token=TOKEN)
    pool = ops.context.database.engine.sync_engine.pool

    if not isinstance(pool, QueuePool):
        # PoolCollector reports only a QueuePool (SQLite in memory gets another pool class).
        samples = await _scrape(ops)
        assert not _names(samples) & {"db_pool_connections_in_use", "db_pool_size"}
        return

    async with ops.context.database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        held = await _scrape(ops)
    released = await _scrape(ops)

    assert _value(held, "db_pool_connections_in_use") == 1
    assert _value(released, "db_pool_connections_in_use") == 0
    assert _value(released, "db_pool_connections_idle") >= 1
    assert _value(released, "db_pool_size") == pool.size()


async def test_an_in_memory_sqlite_pool_has_no_pool_gauges(build_app: AppBuilder) -> None:
    # create_engine gives in-memory SQLite a StaticPool, which PoolCollector leaves out.
    ops = await build_app(
        metrics_enabled=True, metrics_token=TOKEN, database_url="sqlite+aiosqlite://"
    )
    assert not isinstance(ops.context.database.engine.sync_engine.pool, QueuePool)
    assert (await ops.client.get("/healthz")).status_code == 200

    samples = await _scrape(ops)

    assert "http_requests_total" in _names(samples)
    assert not _names(samples) & {
        "db_pool_connections_in_use",
        "db_pool_connections_idle",
        "db_pool_size",
    }


@pytest.mark.postgres_only
async def test_pool_gauges_on_postgresql_report_the_configured_pool(
    build_app: AppBuilder,
) -> None:
    ops = await build_app(
        metrics_enabled=True, metrics_token=TOKEN, database_pool_size=7, database_max_overflow=3
    )
    assert isinstance(ops.context.database.engine.sync_engine.pool, QueuePool)

    async with (
        ops.context.database.engine.connect() as first,
        ops.context.database.engine.connect() as second,
    ):
        await first.execute(text("SELECT 1"))
        await second.execute(text("SELECT 1"))
        held = await _scrape(ops)
    released = await _scrape(ops)

    assert _value(held, "db_pool_connections_in_use") == 2
    assert _value(held, "db_pool_size") == 7
    assert _value(released, "db_pool_connections_in_use") == 0
    assert _value(released, "db_pool_connections_idle") == 2


def test_production_refuses_metrics_without_a_token() -> None:
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="production",
            secret_key="p" * 40,
            metrics_enabled=True,
        )
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="production",
            secret_key="p" * 40,
            metrics_enabled=True,
            metrics_token="",
        )
    allowed = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="production",
        secret_key="p" * 40,
        metrics_enabled=True,
        metrics_token=TOKEN,
    )
    assert allowed.metrics_token == TOKEN

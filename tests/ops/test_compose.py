"""compose.yaml: the structure a deployment relies on (no Docker engine here: parsed only)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# ${NAME}, ${NAME:?message}, ${NAME?message}, ${NAME:-default}, ${NAME-default}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?P<op>:?[?-])?(?P<arg>[^}]*)\}")
SECRET_NAMES = re.compile(r"SECRET|PASSWORD|TOKEN", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    return services


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {str(k): str(v) for k, v in environment.items()}


def test_the_services(services: dict[str, Any]) -> None:
    assert {"db", "redis", "migrate", "api", "worker"} <= services.keys()


def test_the_worker_runs_the_api_image_in_its_other_role(services: dict[str, Any]) -> None:
    worker, api = services["worker"], services["api"]
    assert (worker["image"], worker["build"]) == (api["image"], api["build"])
    assert _command(worker) == ["python", "-m", "app", "worker"]
    assert _environment(worker)["DATABASE_URL"] == _environment(api)["DATABASE_URL"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_db_is_postgres_15_with_a_healthcheck_and_a_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    db = services["db"]
    assert db["image"].startswith("postgres:15")
    assert "pg_isready" in _healthcheck_text(db)
    [volume] = db["volumes"]
    source, _, target = volume.partition(":")
    assert target == "/var/lib/postgresql/data"
    assert source in compose["volumes"]  # a named volume: the data outlives the container


def test_redis_has_a_healthcheck(services: dict[str, Any]) -> None:
    redis = services["redis"]
    assert redis["image"].startswith("redis:")
    assert "ping" in _healthcheck_text(redis)


def test_migrate_is_a_one_shot_alembic_run_of_the_api_image(services: dict[str, Any]) -> None:
    migrate, api = services["migrate"], services["api"]
    assert _command(migrate) == ["alembic", "upgrade", "head"]
    assert migrate["image"] == api["image"]
    assert migrate["build"] == api["build"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"
    assert "ports" not in migrate
    environment = _environment(migrate)
    assert "DATABASE_URL" in environment
    # env.py reads the app's Settings, which refuse production without a SECRET_KEY.
    assert "SECRET_KEY" in environment


def test_api_is_built_from_the_dockerfile_and_serves(services: dict[str, Any]) -> None:
    api = services["api"]
    build = api["build"]
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = build["context"], build.get("dockerfile", "Dockerfile")
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / context / dockerfile).resolve() == ROOT / "Dockerfile"
    assert _command(api) == ["python", "-m", "app", "serve"]
    assert "8000:8000" in [str(port) for port in api["ports"]]


def test_api_waits_for_the_migration_and_the_database(services: dict[str, Any]) -> None:
    depends_on = services["api"]["depends_on"]
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"
    assert depends_on["db"]["condition"] == "service_healthy"


def test_api_environment(services: dict[str, Any]) -> None:
    environment = _environment(services["api"])
    for name in (
        "DATABASE_URL",
        "SECRET_KEY",
        "REDIS_URL",
        "WEB_CONCURRENCY",
        "FORWARDED_ALLOW_IPS",
        "CORS_ORIGINS",
    ):
        assert name in environment, name
    assert environment["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@db:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://redis:6379")


def test_api_healthcheck_is_healthz(services: dict[str, Any]) -> None:
    assert "/healthz" in _healthcheck_text(services["api"])


def test_secret_key_must_be_supplied(services: dict[str, Any]) -> None:
    for name in ("api", "migrate", "worker"):
        value = _environment(services[name])["SECRET_KEY"]
        match = INTERPOLATION.fullmatch(value)
        assert match, f"{name}: SECRET_KEY is not taken from the environment: {value!r}"
        assert match["name"] == "SECRET_KEY"
        assert match["op"] in {":?", "?"}, f"{name}: SECRET_KEY must be required, not defaulted"


def test_no_secret_has_a_default_value(compose: dict[str, Any]) -> None:
    text = (ROOT / "compose.yaml").read_text()
    for match in INTERPOLATION.finditer(text):
        if SECRET_NAMES.search(match["name"]):
            assert match["op"] in {":?", "?"}, f"{match[0]} gives a secret a default"
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if SECRET_NAMES.search(key):
                assert "${" in value, f"{name}: {key} is written into compose.yaml"


def test_the_grace_period_outlasts_the_apps_graceful_shutdown(services: dict[str, Any]) -> None:
    api = services["api"]
    shutdown = int(_environment(api).get("GRACEFUL_SHUTDOWN_SECONDS", "30"))
    grace = api.get("stop_grace_period", "10s")
    match = re.fullmatch(r"(\d+)s", str(grace))
    assert match, grace
    assert int(match[1]) > shutdown

"""End-to-end harness: real PostgreSQL, the API under uvicorn, the built Next.js dashboard under
`npm start`, and Debian's chromium driven by Playwright (sync API).

Entry point: tests/e2e/run.sh (`make e2e`), which runs `pytest tests/e2e -m e2e`. Without `-m e2e`
(or E2E=1) the tests here are deselected, so the main suite never starts servers or a browser.

Screenshots for the README go to test-artifacts/e2e/ too; E2E_UPDATE_DOCS_IMAGES=1 writes them
to docs/ instead (refreshing the docs images on purpose), so a plain run leaves the tree clean.

Everything listens on loopback only. The browser opens http://localhost:3000 and the dashboard
calls http://localhost:8000: one host name, so the SameSite=Lax login cookie flows.
Every process started here runs in its own process group and is killed at the end, even when
setup or a test fails. Screenshots, browser console output and server logs go to
test-artifacts/e2e/.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.e2e.config import (
    API_PORT,
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DASHBOARD_DIR,
    DASHBOARD_PORT,
    DASHBOARD_URL,
    E2E_DATABASE,
    LOGS,
    PASSWORD,
    PG_SERVER,
    ROOT,
    TIMEOUT_MS,
)
from tests.e2e.processes import (
    ServerProcess,
    api_env,
    dashboard_env,
    port_in_use,
    run,
    terminate_on_sigterm,
)
from tests.e2e.seeding import Api, E2EUser, UserFactory, create_user

# --------------------------------------------------------------------------- pytest hooks


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end browser test (real API, dashboard and chromium); run.sh"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Only an explicit `-m ...e2e...` (or E2E=1) runs these; a plain `pytest` leaves them out.
    if "e2e" in (config.option.markexpr or "") or os.environ.get("E2E") == "1":
        return
    e2e = [item for item in items if item.get_closest_marker("e2e")]
    if e2e:
        config.hook.pytest_deselected(items=e2e)
        items[:] = [item for item in items if not item.get_closest_marker("e2e")]


_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


def _failed(item: pytest.Item) -> bool:
    reports = item.stash.get(_reports, {})
    return any(report.failed for report in reports.values())


# --------------------------------------------------------------------------- processes


# --------------------------------------------------------------------------- the stack


async def _recreate_database() -> None:
    connection = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres", timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{E2E_DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{E2E_DATABASE}"')
    finally:
        await connection.close()


def _build_is_stale() -> bool:
    build_id = DASHBOARD_DIR / ".next" / "BUILD_ID"
    if not build_id.exists():
        return True
    built_at = build_id.stat().st_mtime
    sources = [p for p in (DASHBOARD_DIR / "src").rglob("*") if p.is_file()]
    sources += [
        DASHBOARD_DIR / name
        for name in ("package.json", "package-lock.json", "next.config.mjs", "jsconfig.json")
    ]
    return any(p.exists() and p.stat().st_mtime > built_at for p in sources)


def _prepare_dashboard() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: Node.js 20.9+ is needed for the dashboard")
    env = dashboard_env()
    if not (DASHBOARD_DIR / "node_modules").is_dir():
        run([npm, "ci", "--no-audit", "--no-fund"], cwd=DASHBOARD_DIR, env=env,
             timeout=600, what="npm-ci")  # fmt: skip
    if _build_is_stale():
        run([npm, "run", "build"], cwd=DASHBOARD_DIR, env=env, timeout=600, what="npm-build")


def _alembic() -> str:
    beside_python = Path(sys.executable).with_name("alembic")
    return str(beside_python if beside_python.exists() else ROOT / ".venv" / "bin" / "alembic")


@dataclass
class Stack:
    api: ServerProcess
    dashboard: ServerProcess


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    for old in (*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.txt"), *LOGS.glob("*.log")):
        old.unlink()
    LOGS.mkdir(parents=True, exist_ok=True)
    previous_handler = signal.signal(signal.SIGTERM, terminate_on_sigterm)

    api = ServerProcess(
        "api",
        [sys.executable, "-m", "uvicorn", "app.main:app",
         "--host", "127.0.0.1", "--port", str(API_PORT)],
        cwd=ROOT,
        env=api_env(),
        port=API_PORT,
        ready_url=f"http://127.0.0.1:{API_PORT}/healthz",
        ready_timeout=30,
    )  # fmt: skip
    npm = shutil.which("npm") or "npm"
    dashboard = ServerProcess(
        "dashboard",
        [npm, "start", "--", "-H", "127.0.0.1"],  # package.json pins port 3000
        cwd=DASHBOARD_DIR,
        env=dashboard_env(),
        port=DASHBOARD_PORT,
        ready_url=f"http://127.0.0.1:{DASHBOARD_PORT}/login",
        ready_timeout=60,
    )
    try:
        for server in (api, dashboard):  # fail fast, before the slow steps
            if port_in_use(server.port):
                raise RuntimeError(f"port {server.port} is already in use ({server.name})")
        asyncio.run(_recreate_database())
        run([_alembic(), "upgrade", "head"], cwd=ROOT, env=api_env(), timeout=120,
             what="alembic")  # fmt: skip
        _prepare_dashboard()
        api.start()
        dashboard.start()
        yield Stack(api=api, dashboard=dashboard)
    finally:
        dashboard.stop()
        api.stop()
        signal.signal(signal.SIGTERM, previous_handler)


WORKER_METRICS_PORT = 9464


@pytest.fixture
def worker(stack: Stack) -> Iterator[ServerProcess]:
    """A job worker (`python -m app worker`) for one test: while it lives, jobs really run.

    Other tests leave their jobs pending (nothing runs them), so it is started only here.
    """
    env = api_env()
    # Earlier tests leave pending jobs (a second each) queued ahead of this one's: run many at once.
    env.update(
        WORKER_METRICS_PORT=str(WORKER_METRICS_PORT),
        WORKER_CONCURRENCY="50",
        WORKER_SHUTDOWN_GRACE_SECONDS="2",
    )
    process = ServerProcess(
        "worker",
        [sys.executable, "-m", "app", "worker"],
        cwd=ROOT,
        env=env,
        port=WORKER_METRICS_PORT,
        ready_url=f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics",
        ready_timeout=30,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def _api_is_up(request: pytest.FixtureRequest) -> None:
    # A failed outage test must not leave the API down for the tests after it.
    if request.node.get_closest_marker("e2e"):
        request.getfixturevalue("stack").api.start()


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[Api]:
    client = Api()
    yield client
    client.close()


@pytest.fixture
def make_user(api: Api) -> UserFactory:
    """make_user(jobs=[(name, type, status), ...], email=None): a fresh user and their jobs."""

    def make(
        jobs: Sequence[tuple[str, str, str]] = (), *, email: str | None = None, prefix: str = "user"
    ) -> E2EUser:
        email = email or f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
        create_user(email, PASSWORD)
        user = E2EUser(email=email, password=PASSWORD, token=api.login(email, PASSWORD))
        for name, job_type, status in jobs:
            api.seed_job(user, name, job_type, status)
        return user

    return make


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser(stack: Stack) -> Iterator[Browser]:
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=DASHBOARD_URL,
        viewport={"width": 1280, "height": 900},
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


def _artifact_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page; a screenshot of it is saved after every test (-FAILED when it failed)."""
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"[{message.type}] {message.text}"))
    page.on("pageerror", lambda error: console.append(f"[pageerror] {error}"))
    yield page
    name = _artifact_name(request)
    suffix = "-FAILED" if _failed(request.node) else ""
    with contextlib.suppress(Exception):
        page.screenshot(path=ARTIFACTS / f"{name}{suffix}.png", full_page=True)
    if console:
        (ARTIFACTS / f"{name}{suffix}-console.txt").write_text("\n".join(console) + "\n")


@pytest.fixture
def snap(page: Page, request: pytest.FixtureRequest) -> Callable[[str], None]:
    """snap("step"): a screenshot of the current page at an interesting moment."""

    def take(step: str) -> None:
        page.screenshot(path=ARTIFACTS / f"{_artifact_name(request)}--{step}.png", full_page=True)

    return take

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
import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "examples" / "dashboard"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
LOGS = ARTIFACTS / "logs"
DOCS = ROOT / "docs"
UPDATE_DOCS_IMAGES = os.environ.get("E2E_UPDATE_DOCS_IMAGES") == "1"

API_PORT = 8000
DASHBOARD_PORT = 3000
# The browser and the test clients use "localhost" for both, like a user would.
API_URL = f"http://localhost:{API_PORT}"
DASHBOARD_URL = f"http://localhost:{DASHBOARD_PORT}"

PG_SERVER = os.environ.get("E2E_POSTGRES", "postgres@127.0.0.1:5432")
E2E_DATABASE = "jobs_e2e"
DATABASE_URL = f"postgresql+asyncpg://{PG_SERVER}/{E2E_DATABASE}"
SECRET_KEY = "e2e-only-secret-key-0123456789-abcdefghi"  # 40 characters, never used elsewhere
PASSWORD = "e2e-password-123"

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 15_000


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


def _port_in_use(port: int) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                if sock.connect_ex((host, port)) == 0:
                    return True
            except OSError:
                continue  # no IPv6 loopback here
    return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ServerProcess:
    """A server in its own process group, with its output in test-artifacts/e2e/logs/."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        port: int,
        ready_url: str,
        ready_timeout: float,
    ) -> None:
        self.name = name
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.port = port
        self.ready_url = ready_url
        self.ready_timeout = ready_timeout
        self.log_path = LOGS / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        if _port_in_use(self.port):
            raise RuntimeError(
                f"port {self.port} is already in use: stop whatever listens there before the "
                f"e2e run (the tests must talk to their own {self.name})"
            )
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} start {self.argv}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(  # noqa: S603
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills npm's children too
            )
        _started.append(self)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                    f"{_tail(self.log_path)}"
                )
            try:
                response = httpx.get(self.ready_url, timeout=2)
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"{self.name} not ready at {self.ready_url} after {self.ready_timeout}s "
            f"({last_error}):\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the group id is the leader's pid
        _signal_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
        # The leader (npm) may be gone while its children (next-server) still shut down.
        deadline = time.monotonic() + 10
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _port_in_use(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


_started: list[ServerProcess] = []


def _stop_all() -> None:
    for server in reversed(_started):
        with contextlib.suppress(Exception):
            server.stop()


atexit.register(_stop_all)  # safety net; the session fixture stops them first


def _terminate_on_sigterm(signum: int, frame: Any) -> None:
    # A SIGTERM to pytest becomes an interrupt, so fixture teardown kills the servers.
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------- the stack


def _api_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env.update(
        DATABASE_URL=DATABASE_URL,
        ENVIRONMENT="development",  # the cookie is not Secure over plain http
        SECRET_KEY=SECRET_KEY,
        CORS_ORIGINS=DASHBOARD_URL,
        # Every test logs in through the browser and again for seeding: more password checks
        # a minute from one address than a person makes.
        CLIENT_MAX_PASSWORD_CHECKS="1000",
        PYTHONUNBUFFERED="1",
    )
    return env


def _dashboard_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(NEXT_PUBLIC_API_URL=API_URL, NEXT_TELEMETRY_DISABLED="1")
    return env


async def _recreate_database() -> None:
    connection = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres", timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{E2E_DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{E2E_DATABASE}"')
    finally:
        await connection.close()


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float, what: str) -> str:
    result = subprocess.run(  # noqa: S603
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    (LOGS / f"{what}.log").write_text(output)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {' '.join(argv)}\n{output}")
    return output


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
    env = _dashboard_env()
    if not (DASHBOARD_DIR / "node_modules").is_dir():
        _run([npm, "ci", "--no-audit", "--no-fund"], cwd=DASHBOARD_DIR, env=env,
             timeout=600, what="npm-ci")  # fmt: skip
    if _build_is_stale():
        _run([npm, "run", "build"], cwd=DASHBOARD_DIR, env=env, timeout=600, what="npm-build")


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
    previous_handler = signal.signal(signal.SIGTERM, _terminate_on_sigterm)

    api = ServerProcess(
        "api",
        [sys.executable, "-m", "uvicorn", "app.main:app",
         "--host", "127.0.0.1", "--port", str(API_PORT)],
        cwd=ROOT,
        env=_api_env(),
        port=API_PORT,
        ready_url=f"http://127.0.0.1:{API_PORT}/healthz",
        ready_timeout=30,
    )  # fmt: skip
    npm = shutil.which("npm") or "npm"
    dashboard = ServerProcess(
        "dashboard",
        [npm, "start", "--", "-H", "127.0.0.1"],  # package.json pins port 3000
        cwd=DASHBOARD_DIR,
        env=_dashboard_env(),
        port=DASHBOARD_PORT,
        ready_url=f"http://127.0.0.1:{DASHBOARD_PORT}/login",
        ready_timeout=60,
    )
    try:
        for server in (api, dashboard):  # fail fast, before the slow steps
            if _port_in_use(server.port):
                raise RuntimeError(f"port {server.port} is already in use ({server.name})")
        asyncio.run(_recreate_database())
        _run([_alembic(), "upgrade", "head"], cwd=ROOT, env=_api_env(), timeout=120,
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
    env = _api_env()
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


@dataclass
class SeededJob:
    id: int
    name: str
    type: str
    status: str


@dataclass
class E2EUser:
    email: str
    password: str
    token: str
    jobs: list[SeededJob] = field(default_factory=list)


def _create_user(email: str, password: str, *, admin: bool = False) -> None:
    argv = [sys.executable, "-m", "app", "create-user", "--email", email, "--password", password]
    if admin:
        argv.append("--admin")
    _run(argv, cwd=ROOT, env=_api_env(), timeout=60, what="create-user")


class Api:
    """The API as seeding scripts and other clients see it: Bearer tokens over httpx."""

    def __init__(self) -> None:
        self.http = httpx.Client(base_url=API_URL, timeout=10)
        self._admin_token: str | None = None

    def close(self) -> None:
        self.http.close()

    def login(self, email: str, password: str) -> str:
        response = self.http.post("/api/auth/login", json={"email": email, "password": password})
        # Seeding authenticates with Bearer tokens only. A stored login cookie would make the next
        # login a cookie-carrying write without an Origin, which the API's CSRF guard refuses.
        self.http.cookies.clear()
        response.raise_for_status()
        return str(response.json()["access_token"])

    def _auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin_token(self) -> str:
        if self._admin_token is None:
            email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
            _create_user(email, PASSWORD, admin=True)
            self._admin_token = self.login(email, PASSWORD)
        return self._admin_token

    def submit(
        self, token: str, name: str, job_type: str, parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"job_name": name, "job_type": job_type}
        if parameters is not None:
            body["parameters"] = parameters
        response = self.http.post("/api/users/jobs", json=body, headers=self._auth(token))
        response.raise_for_status()
        return dict(response.json()["job"])

    def cancel(self, token: str, job_id: int) -> None:
        response = self.http.post(f"/api/users/jobs/{job_id}/cancel", headers=self._auth(token))
        response.raise_for_status()

    def set_status(self, job_id: int, status: str) -> None:
        response = self.http.patch(
            f"/api/admin/jobs/{job_id}",
            json={"status": status},
            headers=self._auth(self.admin_token),
        )
        response.raise_for_status()

    # pending -> running -> completed | failed; cancelled through the owner's own route.
    _PATHS: ClassVar[dict[str, tuple[str, ...]]] = {
        "pending": (),
        "running": ("running",),
        "completed": ("running", "completed"),
        "failed": ("running", "failed"),
    }

    def seed_job(self, user: E2EUser, name: str, job_type: str, status: str) -> SeededJob:
        job_id = int(self.submit(user.token, name, job_type)["job_id"])
        if status == "cancelled":
            self.cancel(user.token, job_id)
        else:
            for step in self._PATHS[status]:
                self.set_status(job_id, step)
        job = SeededJob(id=job_id, name=name, type=job_type, status=status)
        user.jobs.append(job)
        return job


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[Api]:
    client = Api()
    yield client
    client.close()


UserFactory = Callable[..., E2EUser]


@pytest.fixture
def make_user(api: Api) -> UserFactory:
    """make_user(jobs=[(name, type, status), ...], email=None): a fresh user and their jobs."""

    def make(
        jobs: Sequence[tuple[str, str, str]] = (), *, email: str | None = None, prefix: str = "user"
    ) -> E2EUser:
        email = email or f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
        _create_user(email, PASSWORD)
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

"""`python -m app serve` (and `worker`) as real processes, for the tests that need them.

Each runs in its own process group with its output in a log file, from an empty working
directory (so no `.env` is read) and with only the environment the test gives it. `kill()` ends
the process group by its id; `start_server` kills what it started if it never becomes ready.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
# Variables a Python process needs; nothing from the developer's environment reaches the app.
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(**settings: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def stopping_server_env(
    database_url: str, secret_key: str, grace_seconds: int, workers: int = 1, **settings: str
) -> dict[str, str]:
    """A server on a free port whose graceful stop a test times: its grace period, its workers."""
    return server_env(
        DATABASE_URL=database_url,
        HOST="127.0.0.1",
        PORT=str(free_port()),
        WEB_CONCURRENCY=str(workers),
        ENVIRONMENT="test",
        SECRET_KEY=secret_key,
        GRACEFUL_SHUTDOWN_SECONDS=str(grace_seconds),
        LOG_FORMAT="console",
        **settings,
    )


def refuses_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False


def established_receive_queues(port: int) -> list[int]:
    """Bytes waiting unread in each established server-side socket of `port` (/proc/net/tcp).

    A request whose bytes were sent and whose queue is empty has been read by the server, and
    uvicorn parses what it reads at once: the request is in the server's hands."""
    queues: list[int] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                established = int(fields[3], 16) == 1
                if local_port == port and established:
                    queues.append(int(fields[4].split(":")[1], 16))
    return queues


@dataclass(kw_only=True)
class AppProcess:
    """`python -m app <command>` in its own process group."""

    name: str
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def terminate(self) -> None:
        """SIGTERM to the process itself, as an orchestrator sends it."""
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def launch(command: str, name: str, env: dict[str, str], *, workdir: Path) -> AppProcess:
    """Starts `python -m app <command>` from workdir/<name>, its output in workdir/<name>.log."""
    log_path = workdir / f"{name}.log"
    run_dir = workdir / name
    run_dir.mkdir(exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own CLI, a command the test names)
            [sys.executable, "-m", "app", command],
            cwd=run_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return AppProcess(name=name, log_path=log_path, process=process)


@dataclass(kw_only=True)
class Server(AppProcess):
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} before it was ready:\n"
                    f"{self.tail()}"
                )
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=2)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s ({last}):\n{self.tail()}")


def start_server(name: str, env: dict[str, str], *, workdir: Path) -> Server:
    port = int(env["PORT"])
    if not refuses_connections(port):
        raise RuntimeError(f"port {port} is taken; {name} needs it free")
    launched = launch("serve", name, env, workdir=workdir)
    server = Server(
        name=launched.name, log_path=launched.log_path, process=launched.process, port=port
    )
    try:
        server.wait_ready()
    except BaseException:
        server.kill()
        raise
    return server


# What the suite-wide `servers` fixture (tests/conftest.py) hands a test: start(name, env).
ServerStarter = Callable[[str, dict[str, str]], Server]

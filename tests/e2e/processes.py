"""The stack's processes (the API, the dashboard's `npm start`, a job worker): each in its own
process group with its output in test-artifacts/e2e/logs/, stopped at the end even when setup or
a test fails."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.config import API_URL, DASHBOARD_URL, DATABASE_URL, LOGS, SECRET_KEY


def port_in_use(port: int) -> bool:
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
        if port_in_use(self.port):
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
        while port_in_use(self.port) and time.monotonic() < deadline:
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


def terminate_on_sigterm(signum: int, frame: Any) -> None:
    # A SIGTERM to pytest becomes an interrupt, so fixture teardown kills the servers.
    raise KeyboardInterrupt(f"signal {signum}")


def api_env() -> dict[str, str]:
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


def dashboard_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(NEXT_PUBLIC_API_URL=API_URL, NEXT_TELEMETRY_DISABLED="1")
    return env


def run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float, what: str) -> str:
    result = subprocess.run(  # noqa: S603
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    (LOGS / f"{what}.log").write_text(output)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {' '.join(argv)}\n{output}")
    return output

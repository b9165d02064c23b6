"""What a benchmark reads about processes from /proc: memory, CPU time, and a watch over both
the client's event loop and the server's CPU while something is measured (Linux only)."""

import asyncio
import contextlib
import os
import time
from pathlib import Path


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (its peak) of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(value.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, user and system (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_postgres_process(pid: int) -> bool:
    """Whether `pid` is a PostgreSQL server process on this machine (a backend, the WAL writer,
    ...): false for a server elsewhere, whose process ids mean nothing here."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def runqueue_wait_seconds(pid: int) -> float:
    """How long the process's main thread has waited, runnable, for a CPU (/proc/<pid>/schedstat):
    time lost to other processes rather than spent on its own work or waiting for I/O."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def pin(pid: int, cpu: int) -> None:
    """Pins every thread of a running process (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), {cpu})


class Watch:
    """Second by second, until stopped: how busy another process is and how long it waited for
    a CPU, how long this process waited for one, and how late its event loop woke (its own
    delays count in whatever it times)."""

    TICK = 0.05
    COLUMNS = (
        "at_s",
        "server_cpu_share",
        "server_cpu_wait_ms",
        "client_cpu_wait_ms",
        "client_loop_lag_max_ms",
    )

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.started = time.monotonic()
        self.loop_lag_ms: list[float] = []
        self.seconds: list[tuple[float, ...]] = []  # one row per second, as COLUMNS
        self._task = asyncio.create_task(self._run())

    def _readings(self) -> tuple[float, float, float, float]:
        return (
            time.monotonic(),
            cpu_seconds(self._pid),
            runqueue_wait_seconds(self._pid),
            runqueue_wait_seconds(os.getpid()),
        )

    async def _run(self) -> None:
        last, worst = self._readings(), 0.0
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.TICK)
            lag = (time.monotonic() - before - self.TICK) * 1000
            self.loop_lag_ms.append(lag)
            worst = max(worst, lag)
            if time.monotonic() - last[0] >= 1:
                now = self._readings()
                elapsed = now[0] - last[0]
                self.seconds.append(
                    (
                        now[0] - self.started,
                        (now[1] - last[1]) / elapsed,
                        (now[2] - last[2]) * 1000,
                        (now[3] - last[3]) * 1000,
                        worst,
                    )
                )
                last, worst = now, 0.0

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def column(self, name: str) -> list[float]:
        index = self.COLUMNS.index(name)
        return [row[index] for row in self.seconds]

    def table(self) -> str:
        rows = ["\t".join(f"{value:.3f}" for value in row) for row in self.seconds]
        return "\n".join(["\t".join(self.COLUMNS), *rows]) + "\n"

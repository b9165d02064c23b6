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


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def pin(pid: int, cpu: int) -> None:
    """Pins every thread of a running process (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), {cpu})


class Watch:
    """How late this process's event loop wakes (its own delays count in whatever it times) and
    how busy another process is, second by second, until stopped."""

    TICK = 0.05

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.started = time.monotonic()
        self.loop_lag_ms: list[float] = []
        # Per second: when it ended (seconds since the start), the other process's share of a
        # CPU, this loop's longest lag in ms.
        self.seconds: list[tuple[float, float, float]] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        last_cpu, last_at, worst = cpu_seconds(self._pid), time.monotonic(), 0.0
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.TICK)
            now = time.monotonic()
            lag = (now - before - self.TICK) * 1000
            self.loop_lag_ms.append(lag)
            worst = max(worst, lag)
            if now - last_at >= 1:
                cpu = cpu_seconds(self._pid)
                busy = (cpu - last_cpu) / (now - last_at)
                self.seconds.append((now - self.started, busy, worst))
                last_cpu, last_at, worst = cpu, now, 0.0

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def table(self) -> str:
        rows = [f"{at:.1f}\t{busy:.3f}\t{lag:.1f}" for at, busy, lag in self.seconds]
        return "\n".join(["at_s\tserver_cpu_share\tclient_loop_lag_max_ms", *rows]) + "\n"

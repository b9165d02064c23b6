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

    def __init__(self, api_pid: int) -> None:
        self._pid = api_pid
        self.loop_lag_ms: list[float] = []
        self.api_busy: list[float] = []  # share of a CPU, per second
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        last_cpu, last_at = cpu_seconds(self._pid), time.monotonic()
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.TICK)
            now = time.monotonic()
            self.loop_lag_ms.append((now - before - self.TICK) * 1000)
            if now - last_at >= 1:
                cpu = cpu_seconds(self._pid)
                self.api_busy.append((cpu - last_cpu) / (now - last_at))
                last_cpu, last_at = cpu, now

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

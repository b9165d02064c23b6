"""Event streams (`GET /api/users/jobs/events`) on one API process (`make bench` runs it; the
method is in docs/benchmarks.md).

    .venv/bin/python bench/events.py [--streams 5000] [--delay-streams 1000] [--rate 100]

It drops and recreates the database (jobs_bench_events), seeds one user per stream with a few
jobs each, mints their tokens with the app's own function, and serves the API
(`python -m app serve`, one process, pinned to --api-cpu). This client, on --client-cpu, holds
the streams on raw asyncio connections. Two measurements, each on a freshly started API:

- memory: the API process's RSS with no stream open, then with --streams open and idle (each
  past its first `stats` event) for --hold seconds; all of them must still be open at the end;
- delay: with --delay-streams open, jobs are changed straight in PostgreSQL at --rate per
  second for --seconds (autocommit; the commit is when the UPDATE returns); for each change,
  the time until its owner's stream delivers a `job` event showing it, p50/p99/max, and the
  changes never shown.

Writes events.json and events.md (its section of the report, from bench/events_report.py) to
--out, the API's logs and every change's delay under --out/logs/events, and prints the section.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.config import Settings  # noqa: E402
from app.core.security import create_access_token  # noqa: E402
from bench.database import BenchDatabase, add_database_arguments  # noqa: E402
from bench.events_report import render_events  # noqa: E402
from bench.process_stats import Watch, cpu_seconds, load_average, memory_kib, pin  # noqa: E402
from bench.report import server_log_summary  # noqa: E402
from bench.sse_client import (  # noqa: E402
    OPEN_AT_ONCE,
    Stream,
    close_streams,
    open_streams,
    stream_counts,
)
from tests.ops.servers import Server, server_env, start_server  # noqa: E402

SECRET_KEY = "bench-only-signing-key-never-use-in-production01"  # as bench/run.sh
JOBS_PER_USER = 3
MAX_PROGRESS = 100


@dataclass
class Change:
    job_id: int
    progress: int
    sent: float  # when the UPDATE was sent: before its commit
    committed: float  # when it returned (autocommit: after the commit)


def write_changes(
    dsn: str, jobs: dict[int, list[int]], users: list[int], rate: float, seconds: float
) -> tuple[list[Change], float]:
    """Changes jobs of `users` at `rate` per second on a fixed schedule, in a thread of its own:
    when an UPDATE returns is then noted at once, not after the streams' pending reads."""
    progress: dict[int, int] = {}
    changes: list[Change] = []
    chooser = random.Random(1414)  # noqa: S311 (a fixed sequence, not a secret)
    with psycopg.connect(dsn, autocommit=True) as connection:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            job_id = chooser.choice(jobs[chooser.choice(users)])
            if progress.get(job_id, 0) >= MAX_PROGRESS:
                continue
            progress[job_id] = progress.get(job_id, 0) + 1
            sent = time.monotonic()
            connection.execute(
                "UPDATE jobs SET progress = %s, updated_at = clock_timestamp() WHERE job_id = %s",
                (progress[job_id], job_id),
            )
            changes.append(Change(job_id, progress[job_id], sent, time.monotonic()))
            time.sleep(max(0.0, len(changes) / rate - (time.monotonic() - started)))
        elapsed = time.monotonic() - started
    return changes, len(changes) / elapsed


def shown(change: Change, streams_by_job: dict[int, Stream]) -> tuple[float, bool] | None:
    """When the owner's stream first showed the change, and whether by an event of its own: a
    `job` event with this progress or a later one (two quick changes to one job may arrive as
    one event)."""
    for arrival, progress in streams_by_job[change.job_id].arrivals.get(change.job_id, []):
        if progress >= change.progress:
            return arrival, progress == change.progress
    return None


def percentiles(prefix: str, values: list[float]) -> dict[str, float | None]:
    """p50, p99, max and min in milliseconds, named with the prefix."""
    ordered = sorted(values)
    p99 = (
        statistics.quantiles(ordered, n=100, method="inclusive")[98] if len(ordered) >= 2 else None
    )
    figures = {
        "p50_ms": statistics.median(ordered) if ordered else None,
        "p99_ms": p99,
        "max_ms": ordered[-1] if ordered else None,
        "min_ms": ordered[0] if ordered else None,
    }
    return {prefix + name: None if v is None else round(v, 1) for name, v in figures.items()}


@dataclass
class Scenario:
    args: argparse.Namespace
    env: dict[str, str]  # the API's settings
    logs: Path
    accounts: list[tuple[int, str]]  # (user id, token), one stream each
    jobs: dict[int, list[int]]  # user id -> job ids
    dsn: str

    @contextlib.asynccontextmanager
    async def api(self, name: str) -> AsyncIterator[Server]:
        """A fresh API process, pinned, for one measurement."""
        env = server_env(**self.env)
        server = await asyncio.to_thread(start_server, name, env, workdir=self.logs)
        try:
            pin(server.process.pid, self.args.api_cpu)
            yield server
        finally:
            await asyncio.to_thread(server.kill)

    def streams(self, count: int) -> list[Stream]:
        return [Stream(user_id, token) for user_id, token in self.accounts[:count]]

    async def memory(self) -> dict[str, Any]:
        port = self.args.http_port
        async with self.api("api-memory") as server:
            pid = server.process.pid
            at_start = memory_kib(pid)["VmRSS"]
            # A few streams opened and closed first, so that what the first one loads (code
            # paths, the listener's first notices) is not counted per stream.
            tasks, _ = await open_streams(self.streams(20), port, self.args.open_at_once)
            await close_streams(tasks)
            await asyncio.sleep(2)
            baseline = memory_kib(pid)["VmRSS"]

            streams = self.streams(self.args.streams)
            cpu_before = cpu_seconds(pid)
            tasks, open_seconds = await open_streams(streams, port, self.args.open_at_once)
            open_cpu = cpu_seconds(pid) - cpu_before
            await asyncio.sleep(2)
            all_open = memory_kib(pid)["VmRSS"]
            cpu_before, hold_started = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(self.args.hold)
            held = memory_kib(pid)
            idle_cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - hold_started)
            counts = stream_counts(streams)
            await close_streams(tasks)
        return {
            **counts,
            "open_seconds": round(open_seconds, 1),
            "open_cpu_ms_per_stream": round(open_cpu * 1000 / len(streams), 2),
            "hold_seconds": self.args.hold,
            "idle_cpu_share": round(idle_cpu, 3),  # of one CPU, all streams open and idle
            "rss_kib_at_start": at_start,
            "rss_kib_baseline": baseline,
            "rss_kib_all_open": all_open,
            "rss_kib_after_hold": held["VmRSS"],
            "peak_rss_kib": held["VmHWM"],
            "kib_per_stream": round((held["VmRSS"] - baseline) / len(streams), 1),
        }

    async def delay(self) -> dict[str, Any]:
        args = self.args
        async with self.api("api-delay") as server:
            streams = self.streams(args.delay_streams)
            tasks, open_seconds = await open_streams(streams, args.http_port, args.open_at_once)
            await asyncio.sleep(1)
            by_user = {s.user_id: s for s in streams}
            streams_by_job = {job: by_user[user] for user in by_user for job in self.jobs[user]}
            cpu_before, started = cpu_seconds(server.process.pid), time.monotonic()
            watch = Watch(server.process.pid)
            changes, achieved = await asyncio.to_thread(
                write_changes, self.dsn, self.jobs, list(by_user), args.rate, args.seconds
            )
            busy = (cpu_seconds(server.process.pid) - cpu_before) / (time.monotonic() - started)
            await watch.stop()
            deadline = time.monotonic() + args.grace
            unseen = changes
            while unseen and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                unseen = [c for c in unseen if shown(c, streams_by_job) is None]
            counts = stream_counts(streams)
            await close_streams(tasks)
        delays, from_send, missed, own_event = [], [], 0, 0
        # Every change, for a look at when the slow ones happened: seconds into the run, job,
        # delay in ms (empty when missed).
        raw = ["at_s\tjob_id\tprogress\tdelay_ms"]
        for change in changes:
            seen = shown(change, streams_by_job)
            delay = "" if seen is None else f"{(seen[0] - change.committed) * 1000:.1f}"
            raw.append(
                f"{change.committed - started:.3f}\t{change.job_id}\t{change.progress}\t{delay}"
            )
            if seen is None:
                missed += 1
                continue
            delays.append((seen[0] - change.committed) * 1000)
            from_send.append((seen[0] - change.sent) * 1000)
            own_event += seen[1]
        await asyncio.to_thread((self.logs / "delays.tsv").write_text, "\n".join(raw) + "\n")
        await asyncio.to_thread((self.logs / "seconds.tsv").write_text, watch.table())
        return {
            **counts,
            "open_seconds": round(open_seconds, 1),
            "rate": args.rate,
            "achieved_rate": round(achieved, 1),
            "api_cpu_share": round(busy, 3),  # of one CPU, while the changes were made
            "api_busiest_second": max(watch.column("server_cpu_share"), default=None),
            "api_cpu_wait_worst_second_ms": max(watch.column("server_cpu_wait_ms"), default=None),
            "client_cpu_wait_worst_second_ms": max(
                watch.column("client_cpu_wait_ms"), default=None
            ),
            **percentiles("client_loop_lag_", watch.loop_lag_ms),
            "seconds": args.seconds,
            "changes": len(changes),
            "shown": len(delays),
            "shown_by_own_event": own_event,
            "missed": missed,
            **percentiles("", delays),
            **percentiles("from_send_", from_send),
            **percentiles("update_", [(c.committed - c.sent) * 1000 for c in changes]),
        }


async def prepare(database: BenchDatabase, users: int) -> list[dict[str, Any]]:
    await database.recreate()
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.execute(
            "INSERT INTO users (email, hashed_password)"
            " SELECT 'events-' || n || '@example.com', '!seeded-by-bench-no-login'"
            " FROM generate_series(1, $1) n",
            users,
        )
        await connection.execute(
            "INSERT INTO jobs (user_id, job_name, job_type)"
            " SELECT user_id, 'events ' || n, 'simple' FROM users, generate_series(1, $1) n",
            JOBS_PER_USER,
        )
        await connection.execute("VACUUM ANALYZE")
        rows = await connection.fetch(
            "SELECT user_id, array_agg(job_id ORDER BY job_id) AS jobs FROM jobs"
            " GROUP BY user_id ORDER BY user_id"
        )
    finally:
        await connection.close()
    return [{"user_id": row["user_id"], "jobs": list(row["jobs"])} for row in rows]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_arguments(parser, "jobs_bench_events")
    parser.add_argument("--http-port", type=int, default=8200)
    parser.add_argument("--api-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--streams", type=int, default=5000, help="held open for memory")
    parser.add_argument("--hold", type=float, default=20, help="seconds the streams stay idle")
    parser.add_argument("--delay-streams", type=int, default=1000)
    parser.add_argument("--open-at-once", type=int, default=OPEN_AT_ONCE, help="streams")
    parser.add_argument("--rate", type=float, default=100, help="job changes per second")
    parser.add_argument("--seconds", type=float, default=30, help="of changes")
    parser.add_argument("--grace", type=float, default=10, help="wait for the last events")
    parser.add_argument(
        "--out",
        default=str(
            ROOT / "bench" / "results" / f"events-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        ),
        help="where events.json and the logs go",
    )
    args = parser.parse_args()

    # Each stream is a socket here and one in the server, which inherits this limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max(args.streams, args.delay_streams) + 1000
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"open files: the hard limit {hard} is under {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    os.sched_setaffinity(0, {args.client_cpu})
    # The writer thread notes when each UPDATE returns: let it have the GIL sooner.
    sys.setswitchinterval(0.0005)

    database = BenchDatabase.from_args(args)
    dsn, database_url = database.dsn, database.url
    out = Path(args.out)
    logs = out / "logs" / "events"
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()

    seeded = await prepare(database, max(args.streams, args.delay_streams))
    # As bench/run.sh: the app's settings present in the environment pass through, then the
    # benchmark's own.
    env = {
        name: os.environ[name]
        for name in (field.upper() for field in Settings.model_fields)
        if name in os.environ
    }
    env |= {
        "ENVIRONMENT": "production",
        "SECRET_KEY": SECRET_KEY,
        "COOKIE_SECURE": "true",
        "ACCESS_TOKEN_EXPIRE_MINUTES": "240",
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(args.http_port),
        "WEB_CONCURRENCY": "1",
    }
    settings = Settings.model_validate({k.lower(): v for k, v in env.items()})
    scenario = Scenario(
        args=args,
        env=env,
        logs=logs,
        accounts=[
            (row["user_id"], create_access_token(row["user_id"], 0, settings).token)
            for row in seeded
        ],
        jobs={row["user_id"]: row["jobs"] for row in seeded},
        dsn=dsn,
    )
    memory = await scenario.memory()
    delay = await scenario.delay()
    result = {
        "started_at": started_at,
        "load_before": load_before,
        "load_after": load_average(),
        "cpus": os.cpu_count(),
        "api_cpu": args.api_cpu,
        "client_cpu": args.client_cpu,
        "jobs_per_user": JOBS_PER_USER,
        "open_at_once": args.open_at_once,
        "memory": memory,
        "delay": delay,
        "server_logs": server_log_summary(logs),
    }
    markdown = "\n".join(render_events(result)) + "\n"
    await asyncio.to_thread((out / "events.json").write_text, json.dumps(result, indent=2) + "\n")
    await asyncio.to_thread((out / "events.md").write_text, markdown)
    print(markdown, end="")


if __name__ == "__main__":
    asyncio.run(main())

"""The jobs pipeline end to end: users submit `simple` jobs (seconds=0) through the API while
worker processes run them (`make bench` runs it after the HTTP scenarios; docs/benchmarks.md).

    .venv/bin/python bench/pipeline.py [--database jobs_bench_pipeline] [--workers 2]

It drops and recreates the database, serves the API (`python -m app serve`, one process) and
starts the workers, then measures, in one run:

- the workers alone: --backlog jobs are submitted before any worker starts; jobs/s while the
  workers, once registered, work through them;
- throughput: 50 users submit as fast as they can for --seconds; jobs/s from the first submit
  to the last completion, all jobs waited for;
- pickup latency at a steady --rate jobs/s: from the job's creation (stamped just before the
  submit's commit) to its start on a worker (`started_at`), p50 and p99;
- the ceiling: this PostgreSQL's rate of single-row INSERT commits on 50 connections.
Prints a Markdown summary; the processes it started are stopped at the end.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.config import Settings  # noqa: E402
from app.core.security import create_access_token  # noqa: E402
from bench.database import BenchDatabase, add_database_arguments  # noqa: E402
from bench.process_stats import cpu_seconds, is_postgres_process  # noqa: E402

USERS = 50
# The harness's own database connections, which PostgreSQL's CPU per job leaves out.
HARNESS = "bench-pipeline"
# The server's processes that work for the benchmark's database: its client backends other than
# the harness's, autovacuum on it, and the processes of no database (WAL writer, checkpointer).
_SERVER_PIDS = """
    SELECT pid FROM pg_stat_activity
    WHERE datname IS NULL OR (datname = current_database() AND application_name <> $1)
"""
SECRET_KEY = "bench-only-signing-key-never-use-in-production01"
BODY = {"job_name": "pipeline", "job_type": "simple", "parameters": {"seconds": 0}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603  (our own interpreter and module)
                [sys.executable, "-m", "app", *args],
                cwd=ROOT,
                env={**self.env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started[name] = process
        return process

    async def cpu_seconds(self, dsn: str) -> dict[str, float]:
        """CPU time used so far by each process started and, when PostgreSQL runs on this
        machine, by each of its processes that works for the benchmark's database (by pid:
        one that exits before the next reading is not counted, one that starts in
        between counts whole). Linux: /proc."""
        used = {name: cpu_seconds(process.pid) for name, process in self.started.items()}
        connection = await connect(dsn)
        try:
            if not is_postgres_process(await connection.fetchval("SELECT pg_backend_pid()")):
                return used
            pids = [row["pid"] for row in await connection.fetch(_SERVER_PIDS, HARNESS)]
        finally:
            await connection.close()
        for pid in pids:
            with contextlib.suppress(OSError):
                used[f"postgres:{pid}"] = cpu_seconds(pid)
        return used

    def stop(self) -> None:
        for process in self.started.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def cpu_per_job(before: dict[str, float], after: dict[str, float], jobs: int) -> str:
    """Milliseconds of CPU per job: the API's, the workers' together and PostgreSQL's; with
    all three, the most jobs per second the machine's CPUs could run at that cost per job."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    workers = sum(seconds for name, seconds in used.items() if name.startswith("worker"))
    parts = [f"API {1000 * used['api'] / jobs:.2f} ms", f"workers {1000 * workers / jobs:.2f} ms"]
    postgres = [seconds for name, seconds in used.items() if name.startswith("postgres:")]
    if postgres:
        total = used["api"] + workers + sum(postgres)
        cpus = os.cpu_count() or 1
        parts.append(
            f"PostgreSQL {1000 * sum(postgres) / jobs:.2f} ms (all three: "
            f"{1000 * total / jobs:.2f} ms, at most {cpus * jobs / total:.0f} jobs/s on "
            f"{cpus} CPUs at that cost)"
        )
    return ", ".join(parts)


async def connect(dsn: str) -> asyncpg.Connection:
    """A connection of the harness's own, named so (HARNESS)."""
    return await asyncpg.connect(dsn, server_settings={"application_name": HARNESS})


async def _users(dsn: str, settings: Settings) -> list[str]:
    """USERS users, a token each."""
    connection = await connect(dsn)
    try:
        ids = await connection.fetch(
            "INSERT INTO users (email, hashed_password) "
            "SELECT 'pipeline-' || n || '@example.com', 'not a hash' FROM generate_series(1, $1) n "
            "RETURNING user_id",
            USERS,
        )
    finally:
        await connection.close()
    return [create_access_token(row[0], 0, settings).token for row in ids]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The server closes a keep-alive connection idle for this long (uvicorn's default).
SERVER_KEEP_ALIVE_SECONDS = 5


def _users_client(url: str) -> httpx.AsyncClient:
    """One connection per user at most. Idle connections are dropped well before the server
    would close them: a request sent on a connection at the moment the server closes it for
    idleness fails with httpx.ReadError (the submits of a batch share fewer connections than
    there are users, so some sit idle for seconds)."""
    limits = httpx.Limits(
        max_connections=USERS,
        max_keepalive_connections=USERS,
        keepalive_expiry=SERVER_KEEP_ALIVE_SECONDS / 2,
    )
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=30)


async def _wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the API did not start")


async def _wait_workers(dsn: str, count: int) -> None:
    connection = await connect(dsn)
    try:
        for _ in range(600):
            if await connection.fetchval("SELECT count(*) FROM procrastinate_workers") >= count:
                return
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    raise RuntimeError("the workers did not start")


async def _drain(dsn: str, within: float = 300) -> None:
    connection = await connect(dsn)
    try:
        deadline = time.monotonic() + within
        while await connection.fetchval(
            "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("jobs still unfinished")
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


async def throughput(
    url: str, dsn: str, tokens: list[str], seconds: float, logs: Path
) -> dict[str, float]:
    """wrk (the HTTP scenarios' load generator) sends the submits, one connection per user,
    each request with the next user's token: a client in Python cost more CPU than the API
    it was measuring, on the same 2 CPUs."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is required (bench/run.sh installs it)")
    connection = await connect(dsn)
    first_id = await connection.fetchval("SELECT coalesce(max(job_id), 0) FROM jobs")
    await connection.close()
    tokens_file, result_file = logs / "throughput-tokens.txt", logs / "throughput-wrk.json"
    tokens_file.write_text("\n".join(tokens) + "\n")
    env = {
        **os.environ,
        "BENCH_TOKENS_FILE": str(tokens_file),
        "BENCH_METHOD": "POST",
        "BENCH_BODY": json.dumps(BODY),
        "BENCH_OUT": str(result_file),
    }
    script = str(ROOT / "bench" / "wrk" / "request.lua")
    process = await asyncio.create_subprocess_exec(
        *(wrk, "-t1", f"-c{USERS}", f"-d{seconds:g}s", "--timeout", "10s", "-s", script),
        f"{url}/api/users/jobs",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )
    if await process.wait() != 0:
        raise RuntimeError("wrk failed")
    sent = json.loads(result_file.read_text())
    wrk_errors = sum(sent["errors"][kind] for kind in ("connect", "read", "write", "timeout"))
    errors = wrk_errors + sum(n for code, n in sent["statuses"].items() if code != "201")
    await _drain(dsn)
    connection = await connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'completed') AS completed, count(*) AS total,"
            " extract(epoch FROM max(finished_at) - min(created_at)) AS span FROM jobs"
            " WHERE job_id > $1",
            first_id,
        )
    finally:
        await connection.close()
    return {
        "jobs": row["total"],
        "completed": row["completed"],
        "errors": errors,
        "span_s": float(row["span"]),
        "jobs_per_s": row["completed"] / float(row["span"]),
    }


async def backlog(url: str, tokens: list[str], count: int) -> None:
    """Submit `count` jobs before any worker runs."""
    async with _users_client(url) as client:
        for start in range(0, count, USERS):
            await asyncio.gather(
                *(
                    client.post("/api/users/jobs", json=BODY, headers=_bearer(tokens[n % USERS]))
                    for n in range(start, min(start + USERS, count))
                )
            )


async def drain_rate(dsn: str, count: int) -> float:
    """Jobs/s while the workers, just started, work through a backlog of `count`."""
    connection = await connect(dsn)
    try:
        started = time.monotonic()
        while True:
            unfinished = await connection.fetchval(
                "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')"
            )
            if not unfinished:
                return count / (time.monotonic() - started)
            await asyncio.sleep(0.05)
    finally:
        await connection.close()


async def pickup(
    url: str, dsn: str, tokens: list[str], rate: float, seconds: float
) -> dict[str, float]:
    connection = await connect(dsn)
    first_id = await connection.fetchval("SELECT coalesce(max(job_id), 0) FROM jobs")
    sent: list[asyncio.Task[httpx.Response]] = []
    async with _users_client(url) as client:
        start = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) + 1
            while n < due:  # open loop: submits go out on schedule, answered or not
                sent.append(
                    asyncio.create_task(
                        client.post(
                            "/api/users/jobs", json=BODY, headers=_bearer(tokens[n % USERS])
                        )
                    )
                )
                n += 1
            await asyncio.sleep(max(0.0, (n / rate) - (time.monotonic() - start)))
        responses = await asyncio.gather(*sent)
    await _drain(dsn)
    delays = [
        float(d) * 1000
        for (d,) in await connection.fetch(
            "SELECT extract(epoch FROM started_at - created_at) FROM jobs"
            " WHERE job_id > $1 AND started_at IS NOT NULL ORDER BY 1",
            first_id,
        )
    ]
    await connection.close()
    quantiles = statistics.quantiles(delays, n=100)
    return {
        "submitted": len(responses),
        "errors": sum(r.status_code != 201 for r in responses),
        "rate": rate,
        "p50_ms": statistics.median(delays),
        "p99_ms": quantiles[98],
    }


async def insert_ceiling(dsn: str, seconds: float, connections: int = USERS) -> float:
    setup = await connect(dsn)
    await setup.execute("CREATE TABLE IF NOT EXISTS pipeline_ceiling (id bigserial, v int)")
    await setup.close()
    pool = await asyncpg.create_pool(
        dsn,
        min_size=connections,
        max_size=connections,
        server_settings={"application_name": HARNESS},
    )
    done = 0
    stop = time.monotonic() + seconds

    async def insert() -> None:
        nonlocal done
        async with pool.acquire() as connection:
            while time.monotonic() < stop:
                await connection.execute("INSERT INTO pipeline_ceiling (v) VALUES ($1)", 1)
                done += 1

    started = time.monotonic()
    await asyncio.gather(*(insert() for _ in range(connections)))
    elapsed = time.monotonic() - started
    await pool.close()
    return done / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_arguments(parser, "jobs_bench_pipeline")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10, help="per worker")
    parser.add_argument("--seconds", type=float, default=10, help="each measurement")
    parser.add_argument("--rate", type=float, default=100, help="the steady rate, jobs/s")
    parser.add_argument("--backlog", type=int, default=1000, help="jobs queued before workers")
    parser.add_argument("--logs", default=str(ROOT / "bench" / "results" / "pipeline-logs"))
    args = parser.parse_args()

    database = BenchDatabase.from_args(args)
    dsn, database_url = database.dsn, database.url
    await database.recreate()

    settings = Settings(_env_file=None, database_url=database_url, secret_key=SECRET_KEY)  # type: ignore[call-arg]
    tokens = await _users(dsn, settings)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    logs = Path(args.logs)
    await asyncio.to_thread(logs.mkdir, parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "WORKER_CONCURRENCY": str(args.concurrency),
        "DATABASE_POOL_SIZE": "20",
    }
    processes = Processes(env, logs)
    try:
        processes.start("api", "serve")
        await _wait_ready(url)
        ceiling = await insert_ceiling(dsn, args.seconds / 2)
        await backlog(url, tokens, args.backlog)
        for n in range(args.workers):
            processes.start(f"worker-{n + 1}", "worker")
        await _wait_workers(dsn, args.workers)
        before = await processes.cpu_seconds(dsn)
        drained = await drain_rate(dsn, args.backlog)
        drain_cpu = cpu_per_job(before, await processes.cpu_seconds(dsn), args.backlog)
        before = await processes.cpu_seconds(dsn)
        flow = await throughput(url, dsn, tokens, args.seconds, logs)
        flow_cpu = cpu_per_job(before, await processes.cpu_seconds(dsn), int(flow["jobs"]))
        steady = await pickup(url, dsn, tokens, args.rate, args.seconds)
    finally:
        processes.stop()

    print(
        f"## Pipeline ({args.workers} workers x {args.concurrency}, {USERS} users, 1 API process)\n"
    )
    print("| measure | value |\n|---|---|")
    print(
        f"| ceiling: PostgreSQL single-row INSERT commits/s ({USERS} connections) | {ceiling:.0f} |"
    )
    print(
        f"| end to end, submit to completed | {flow['jobs_per_s']:.0f} jobs/s "
        f"({flow['completed']} of {flow['jobs']} completed in {flow['span_s']:.1f} s, "
        f"{flow['errors']} submit errors) |"
    )
    print(f"| share of the ceiling | {flow['jobs_per_s'] / ceiling:.3f} |")
    print(f"| CPU per job, end to end (wrk submitting) | {flow_cpu} |")
    print(f"| workers alone, through a backlog of {args.backlog} | {drained:.0f} jobs/s |")
    print(f"| CPU per job, workers alone | {drain_cpu} |")
    print(
        f"| pickup at {steady['rate']:.0f} jobs/s, creation to running | "
        f"p50 {steady['p50_ms']:.1f} ms, p99 {steady['p99_ms']:.1f} ms "
        f"({steady['submitted']} jobs, {steady['errors']} submit errors) |"
    )


if __name__ == "__main__":
    asyncio.run(main())

"""The jobs feature's metrics: the API's, registered with the app's at start-up (app/main.py),
and the worker's, served by `python -m app worker` when WORKER_METRICS_PORT is set."""

from prometheus_client import Counter, Gauge, Histogram

JOBS_SUBMITTED = Counter("jobs_submitted_total", "Jobs submitted", ["job_type"], registry=None)

# job_type is chosen by users: past this many distinct values they count as "other", so a
# client cannot grow the metrics without bound.
MAX_JOB_TYPE_LABELS = 100
_seen_job_types: set[str] = set()


def count_submitted_job(job_type: str) -> None:
    if job_type not in _seen_job_types and len(_seen_job_types) < MAX_JOB_TYPE_LABELS:
        _seen_job_types.add(job_type)
    JOBS_SUBMITTED.labels(job_type if job_type in _seen_job_types else "other").inc()


# The worker's, in prometheus-client's default registry (what the worker's port serves).
JOB_RUNS = Histogram(
    "job_run_duration_seconds",
    "Time a job attempt ran, by type and outcome",
    ["job_type", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600),
)
QUEUE_DEPTH = Gauge("job_queue_depth", "Work waiting to be picked up, by job type", ["job_type"])
RECOVERED = Counter("job_recovered_total", "Work taken back from workers that stopped responding")

"""The jobs feature's metrics, registered with the app's at start-up (app/main.py)."""

from prometheus_client import Counter

JOBS_SUBMITTED = Counter("jobs_submitted_total", "Jobs submitted", ["job_type"], registry=None)

# job_type is chosen by users: past this many distinct values they count as "other", so a
# client cannot grow the metrics without bound.
MAX_JOB_TYPE_LABELS = 100
_seen_job_types: set[str] = set()


def count_submitted_job(job_type: str) -> None:
    if job_type not in _seen_job_types and len(_seen_job_types) < MAX_JOB_TYPE_LABELS:
        _seen_job_types.add(job_type)
    JOBS_SUBMITTED.labels(job_type if job_type in _seen_job_types else "other").inc()

"""`simple`: waits, reporting progress; then completes, or fails when asked to."""

import asyncio
import time

from pydantic import BaseModel, ConfigDict, Field

from app.jobs.types import JobRun, job_type

# How often a long wait reports progress.
PROGRESS_EVERY_SECONDS = 1.0


class SimpleParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=1, ge=0, le=3600, description="How long to wait")
    fail: bool = Field(default=False, description="Fail after the wait instead of completing")


class SimpleJobFailed(Exception):
    """The failure a `simple` job was asked for."""


@job_type(
    "simple",
    parameters=SimpleParameters,
    description='Waits `seconds`, reporting progress, then completes with {"slept": seconds} '
    "(or fails, when `fail` is true).",
    timeout_seconds=3600 + 60,
    max_attempts=3,
    retry_wait_seconds=1,
)
async def simple(params: SimpleParameters, run: JobRun) -> dict[str, float]:
    deadline = time.monotonic() + params.seconds
    while (left := deadline - time.monotonic()) > 0:
        # asyncio.sleep is where a cancel lands: the job stops at once.
        await asyncio.sleep(min(left, PROGRESS_EVERY_SECONDS))
        done = params.seconds - max(deadline - time.monotonic(), 0)
        await run.progress(100 * done / params.seconds, f"slept {done:.0f} of {params.seconds:g} s")
    if params.fail:
        raise SimpleJobFailed(f"failed as asked, after {params.seconds:g} s")
    return {"slept": params.seconds}

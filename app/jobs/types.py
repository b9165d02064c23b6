"""The job types: what a submit may ask for, and the handler a worker runs for it.

A type is one async function with a pydantic parameters model, registered once:

    class ResizeParameters(BaseModel):
        width: int = Field(ge=1, le=4096)

    @job_type("resize", parameters=ResizeParameters, description="Resize an image",
              timeout_seconds=60, max_attempts=3)
    async def resize(params: ResizeParameters, run: JobRun) -> dict[str, Any]:
        await run.progress(50, "halfway")
        return {"width": params.width}

The module holding it is imported by `load_builtin_types()` (app/jobs/builtin/). Whatever the
handler returns (JSON) becomes the job's `result`; an exception is the attempt's error.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

ParamsT = TypeVar("ParamsT", bound=BaseModel)


class JobRun(Protocol):
    """What a running handler may tell about itself."""

    job_id: int
    attempt: int

    async def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0-100) and an optional short message. Raises
        asyncio.CancelledError when the job was cancelled meanwhile: let it propagate."""


Handler = Callable[[Any, JobRun], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class JobType:
    name: str
    description: str
    parameters: type[BaseModel]
    handler: Handler
    # An attempt that runs longer fails with a timeout error (and may be retried).
    timeout_seconds: float
    # Runs in all, the first included; 1 means no retry.
    max_attempts: int
    # Pause before a failed attempt's retry.
    retry_wait_seconds: int

    def parameters_schema(self) -> dict[str, Any]:
        return self.parameters.model_json_schema()

    def validate_parameters(self, parameters: dict[str, Any] | None) -> dict[str, Any]:
        """The parameters as the handler will get them, defaults filled in; raises pydantic's
        ValidationError with one error per field."""
        return self.parameters.model_validate(parameters or {}).model_dump(mode="json")


_REGISTRY: dict[str, JobType] = {}


def job_type(
    name: str,
    *,
    parameters: type[ParamsT],
    description: str,
    timeout_seconds: float,
    max_attempts: int = 1,
    retry_wait_seconds: int = 1,
) -> Callable[
    [Callable[[ParamsT, JobRun], Awaitable[Any]]],
    Callable[[ParamsT, JobRun], Awaitable[Any]],
]:
    """Register the decorated handler as the job type `name`."""
    if name in _REGISTRY:
        raise ValueError(f"job type {name!r} is registered twice")
    if max_attempts < 1 or timeout_seconds <= 0:
        raise ValueError("max_attempts must be at least 1 and timeout_seconds positive")

    def register(
        handler: Callable[[ParamsT, JobRun], Awaitable[Any]],
    ) -> Callable[[ParamsT, JobRun], Awaitable[Any]]:
        _REGISTRY[name] = JobType(
            name=name,
            description=description,
            parameters=parameters,
            handler=handler,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            retry_wait_seconds=retry_wait_seconds,
        )
        return handler

    return register


def load_builtin_types() -> None:
    # Importing the package registers its types.
    import app.jobs.builtin  # noqa: F401


def registered_types() -> dict[str, JobType]:
    load_builtin_types()
    return dict(sorted(_REGISTRY.items()))


def get_job_type(name: str) -> JobType | None:
    load_builtin_types()
    return _REGISTRY.get(name)

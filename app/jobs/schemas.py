import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from app.core.schemas import RequestModel
from app.jobs.types import get_job_type, registered_types
from app.models import JobStatus

JobName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
JobType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,50}$")]


class JobCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"job_name": "nightly report", "job_type": "simple", "parameters": {"seconds": 5}}
            ]
        }
    )

    job_name: JobName
    job_type: JobType = Field(description="One of GET /api/job-types")
    parameters: dict[str, Any] | None = Field(
        default=None,
        validate_default=True,
        description="As the type's parameters_schema says; defaults filled in",
    )

    @field_validator("job_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if get_job_type(value) is None:
            known = ", ".join(registered_types())
            raise ValueError(f"Unknown job type {value!r}; known types: {known}")
        return value

    @field_validator("parameters")
    @classmethod
    def _valid_parameters(
        cls, value: dict[str, Any] | None, info: ValidationInfo
    ) -> dict[str, Any] | None:
        job_type = get_job_type(info.data.get("job_type", ""))
        if job_type is None:
            return value  # the type's own error says why
        # Errors come back one per field, at ["body", "parameters", <field>].
        return job_type.validate_parameters(value)


class JobStatusUpdate(RequestModel):
    status: JobStatus


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job_id: int
    status: JobStatus
    created_at: datetime
    job_name: str
    job_type: str
    updated_at: datetime
    user_id: int


class JobChange(JobRead):
    """A job as the events stream sends it: as the list shows it, and how far it got."""

    progress: int = Field(description="0-100, as the handler last reported")
    progress_message: str | None


class JobDetail(JobRead):
    parameters: dict[str, Any] | None
    attempts: int = Field(description="Runs started so far, retries included")
    progress: int = Field(description="0-100, as the handler last reported")
    progress_message: str | None
    result: JsonValue = Field(description="What a completed job returned")
    error: str | None = Field(description="Why the last attempt failed")
    started_at: datetime | None
    finished_at: datetime | None


_LIST_EXAMPLE: dict[str, Any] = {
    "jobs": [
        {
            "job_id": 2,
            "status": "pending",
            "created_at": "2025-06-22T20:03:17.574214Z",
            "job_name": "test",
            "job_type": "simple",
            "updated_at": "2025-06-22T20:03:17.574214Z",
            "user_id": 1,
        },
        {
            "job_id": 1,
            "status": "pending",
            "created_at": "2025-06-22T20:01:51.272456Z",
            "job_name": "test",
            "job_type": "simple",
            "updated_at": "2025-06-22T20:01:51.272456Z",
            "user_id": 1,
        },
    ],
    "message": "Jobs fetched successfully",
    "success": True,
    "total": 2,
    "next_cursor": None,
}


class JobListResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [cast(JsonValue, _LIST_EXAMPLE)]})

    jobs: list[JobRead]
    message: str = "Jobs fetched successfully"
    success: bool = True
    total: int = Field(description="How many of the user's jobs match the filter, on all pages")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


_LIST_MESSAGE = json.dumps(JobListResponse.model_fields["message"].default)


def list_response_json(jobs: Sequence[str], total: int, next_cursor: str | None) -> bytes:
    """JobListResponse as FastAPI would serialize it (its fields, in its order), from jobs
    already rendered as JobRead's JSON: validating and serializing a page of models again
    would cost more than the rest of the request."""
    cursor = "null" if next_cursor is None else json.dumps(next_cursor)
    return (
        f'{{"jobs":[{",".join(jobs)}],"message":{_LIST_MESSAGE},"success":true,'
        f'"total":{total},"next_cursor":{cursor}}}'
    ).encode()


class JobResponse(BaseModel):
    job: JobDetail
    message: str
    success: bool = True


class JobStats(BaseModel):
    total: int
    pending: int
    running: int
    completed: int
    failed: int
    cancelled: int


class JobStatsResponse(BaseModel):
    stats: JobStats
    message: str = "Job statistics fetched successfully"
    success: bool = True


class JobTypeRead(BaseModel):
    name: str
    description: str
    parameters_schema: dict[str, Any] = Field(description="The JSON schema of `parameters`")


class JobTypesResponse(BaseModel):
    job_types: list[JobTypeRead]
    message: str = "Job types fetched successfully"
    success: bool = True


class AdminJobListParams(BaseModel):
    status: list[JobStatus] = Field(
        default_factory=list, description="Only jobs in these statuses (repeatable)"
    )
    user_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="Only this owner's")
    limit: int = Field(default=100, ge=1, le=1000, description="Page size")
    cursor: str | None = Field(
        default=None, max_length=200, description="`next_cursor` of the previous page"
    )


class AdminJobListResponse(BaseModel):
    jobs: list[JobDetail]
    message: str = "Jobs fetched successfully"
    success: bool = True
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from app.core.schemas import RequestModel
from app.models import JobStatus

JobName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
JobType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,50}$")]


class JobCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"job_name": "nightly report", "job_type": "report", "parameters": {"day": 1}}
            ]
        }
    )

    job_name: JobName
    job_type: JobType = Field(description="A slug: lowercase letters, digits, '_' or '-'")
    parameters: dict[str, Any] | None = None


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


class JobDetail(JobRead):
    parameters: dict[str, Any] | None


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

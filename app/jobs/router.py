from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.auth.dependencies import AdminCaller, CurrentCaller, auth_service, request_token
from app.context import get_context
from app.core.db import SessionDep
from app.core.errors import error_responses, json_error_responses
from app.core.http_cache import conditional_response, private_json
from app.core.json_values import StrictJSONRoute
from app.jobs.events import JobEventStream
from app.jobs.schemas import (
    AdminJobListParams,
    AdminJobListResponse,
    JobCreate,
    JobDetail,
    JobListResponse,
    JobResponse,
    JobStatsResponse,
    JobStatusUpdate,
    JobTypeRead,
    JobTypesResponse,
)
from app.jobs.service import JobService
from app.jobs.types import registered_types
from app.models import JobStatus

router = APIRouter(prefix="/api/users/jobs", tags=["jobs"], route_class=StrictJSONRoute)
admin_router = APIRouter(prefix="/api/admin/jobs", tags=["admin"], route_class=StrictJSONRoute)
types_router = APIRouter(prefix="/api/job-types", tags=["jobs"], route_class=StrictJSONRoute)


async def get_job_service(session: SessionDep, request: Request) -> JobService:
    # The context read directly, not as a dependency: each dependency costs its resolution
    # on every poll (docs/benchmarks.md).
    context = get_context(request)
    return JobService(session, context.work_queue, context.revalidation_cache)


JobServiceDep = Annotated[JobService, Depends(get_job_service)]


async def open_event_stream(user: CurrentCaller, request: Request) -> AsyncIterator[JobEventStream]:
    """A stream of the caller's job events, counted against their streams (429 past the cap)
    until the response ends. It holds no session of the request's: those are released before
    the response starts (scope="function"), and the stream opens one per read."""
    context = get_context(request)
    token = request_token(request)
    assert token is not None  # `user` was found by it
    with context.event_hub.subscribe(user.user_id) as subscription:
        yield JobEventStream(
            subscription,
            context.event_hub,
            context.database,
            token=token,
            settings=context.settings,
            auth=lambda session: auth_service(context, session),
        )


JobEventStreamDep = Annotated[JobEventStream, Depends(open_event_stream)]
JobIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="The job's id")]


# The list's query string, as plain parameters: FastAPI reads a query model field by field
# through more machinery (docs/benchmarks.md).
StatusFilter = Annotated[
    list[JobStatus], Query(description="Only jobs in these statuses (repeatable)")
]
PageSize = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the previous page")
]
LastEventId = Annotated[
    str | None,
    Header(
        description="The `id` of the last event received (browsers send it when they "
        "reconnect): the jobs changed since are sent first, or a `resync` event"
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(description="The ETag of an earlier answer: 304 with no body if nothing changed"),
]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Nothing changed since the ETag in If-None-Match"}
}


@router.get(
    "",
    response_model=JobListResponse,
    responses={**NOT_MODIFIED, **error_responses(400, 401, 422)},
)
async def list_my_jobs(
    user: CurrentCaller,
    jobs: JobServiceDep,
    status: StatusFilter = [],  # noqa: B006 (FastAPI hands each request a copy)
    limit: PageSize = 100,
    cursor: Cursor = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The current user's jobs, newest first."""
    answer = await jobs.list_if_changed(user, jobs.query(status, limit, cursor), if_none_match)
    return conditional_response(answer.etag, answer.body)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobResponse,
    responses=error_responses(401, 422),
)
async def submit_job(body: JobCreate, user: CurrentCaller, jobs: JobServiceDep) -> Response:
    """Submit a job; it starts as pending."""
    job = await jobs.submit(
        user, job_name=body.job_name, job_type=body.job_type, parameters=body.parameters
    )
    # Serialized once, here: returned as a model, the answer would be validated again.
    answer = JobResponse(job=JobDetail.model_validate(job), message="Job submitted successfully")
    return private_json(answer.model_dump_json().encode(), status.HTTP_201_CREATED)


@router.get(
    "/stats",
    response_model=JobStatsResponse,
    responses={**NOT_MODIFIED, **error_responses(401)},
)
async def my_job_stats(
    user: CurrentCaller, jobs: JobServiceDep, if_none_match: IfNoneMatch = None
) -> Response:
    """How many of the current user's jobs are in each status."""
    answer = await jobs.stats_if_changed(user, if_none_match)
    return conditional_response(answer.etag, answer.body)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "`text/event-stream` until the token expires or is revoked, or the "
            "server stops. Events: `stats` (the totals, as in /stats), then `job` (a job as "
            "the list shows it, with `progress` and `progress_message`) for each job created "
            "or changed, each batch closed by `stats`; `resync` (reload everything) when the "
            "missed changes cannot be replayed. A `: ping` comment after 15 s of silence."
        },
        **json_error_responses(401, 429),
    },
)
async def my_job_events(
    stream: JobEventStreamDep, last_event_id: LastEventId = None
) -> AsyncIterator[ServerSentEvent]:
    """The current user's job changes, pushed as they commit (Server-Sent Events)."""
    async for event in stream.events(last_event_id):
        yield ServerSentEvent(event=event.name, raw_data=event.data, id=event.id)


@router.get("/{job_id}", response_model=JobResponse, responses=error_responses(401, 404, 422))
async def get_my_job(job_id: JobIdPath, user: CurrentCaller, jobs: JobServiceDep) -> JobResponse:
    """One of the current user's jobs."""
    job = await jobs.get_own(user, job_id)
    return JobResponse(job=JobDetail.model_validate(job), message="Job fetched successfully")


@router.post(
    "/{job_id}/cancel",
    response_model=JobResponse,
    responses=error_responses(401, 404, 409, 422),
)
async def cancel_my_job(job_id: JobIdPath, user: CurrentCaller, jobs: JobServiceDep) -> JobResponse:
    """Cancel a pending or running job."""
    job = await jobs.cancel(user, job_id)
    return JobResponse(job=JobDetail.model_validate(job), message="Job cancelled successfully")


@types_router.get("", response_model=JobTypesResponse, responses=error_responses(401))
async def list_job_types(_user: CurrentCaller) -> JobTypesResponse:
    """The job types a submit may name, each with the JSON schema of its parameters."""
    return JobTypesResponse(
        job_types=[
            JobTypeRead(
                name=job_type.name,
                description=job_type.description,
                parameters_schema=job_type.parameters_schema(),
            )
            for job_type in registered_types().values()
        ]
    )


@admin_router.get(
    "", response_model=AdminJobListResponse, responses=error_responses(400, 401, 403, 422)
)
async def list_all_jobs(
    params: Annotated[AdminJobListParams, Query()], _admin: AdminCaller, jobs: JobServiceDep
) -> AdminJobListResponse:
    """Every user's jobs, newest first; filter by status and owner."""
    page, next_cursor = await jobs.list_all(
        params.status, params.user_id, params.limit, params.cursor
    )
    return AdminJobListResponse(
        jobs=[JobDetail.model_validate(job) for job in page], next_cursor=next_cursor
    )


@admin_router.post(
    "/{job_id}/retry",
    response_model=JobResponse,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def retry_job(job_id: JobIdPath, _admin: AdminCaller, jobs: JobServiceDep) -> JobResponse:
    """Queue a failed job again: it goes back to pending with a fresh set of attempts."""
    job = await jobs.retry(job_id)
    return JobResponse(job=JobDetail.model_validate(job), message="Job queued again")


@admin_router.patch(
    "/{job_id}",
    response_model=JobResponse,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def change_job_status(
    job_id: JobIdPath, body: JobStatusUpdate, _admin: AdminCaller, jobs: JobServiceDep
) -> JobResponse:
    """Move any job through its lifecycle by hand (admins). Starting a job is a worker's;
    moving a failed job to pending retries it; any other move withdraws its queued work."""
    job = await jobs.change_status(job_id, body.status)
    return JobResponse(job=JobDetail.model_validate(job), message="Job status updated")

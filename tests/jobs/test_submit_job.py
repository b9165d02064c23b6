from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import bearer, create_user

URL = "/api/users/jobs"


async def test_submits_a_pending_job_with_its_parameters(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    parameters = {"seconds": 2.5, "fail": True}

    response = await client.post(
        URL,
        json={"job_name": "  nightly report  ", "job_type": "simple", "parameters": parameters},
        headers=bearer(user, settings),
    )

    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["job", "message", "success"]
    assert body["message"] == "Job submitted successfully"
    assert body["success"] is True
    job = body["job"]
    assert set(job) == {
        "job_id",
        "status",
        "created_at",
        "job_name",
        "job_type",
        "updated_at",
        "user_id",
        "parameters",
        "attempts",
        "progress",
        "progress_message",
        "result",
        "error",
        "started_at",
        "finished_at",
    }
    assert job["status"] == "pending"
    assert job["job_name"] == "nightly report"
    assert job["job_type"] == "simple"
    assert job["parameters"] == parameters
    assert job["user_id"] == user.user_id
    assert (job["attempts"], job["progress"], job["result"], job["error"]) == (0, 0, None, None)
    assert job["started_at"] is None
    assert job["finished_at"] is None

    fetched = await client.get(f"{URL}/{job['job_id']}", headers=bearer(user, settings))
    assert fetched.json()["job"] == job
    listed = (await client.get(URL, headers=bearer(user, settings))).json()
    assert [item["job_id"] for item in listed["jobs"]] == [job["job_id"]]


async def test_parameters_are_optional_and_get_the_types_defaults(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    response = await client.post(
        URL, json={"job_name": "bare", "job_type": "simple"}, headers=bearer(user, settings)
    )

    assert response.status_code == 201
    assert response.json()["job"]["parameters"] == {"seconds": 1, "fail": False}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"job_name": "x" * 255, "job_type": "simple"}, id="255-char-name"),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": {}}, id="empty-parameters"
        ),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": {"seconds": 3600}},
            id="longest-wait",
        ),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": {"seconds": 0}}, id="no-wait"
        ),
    ],
)
async def test_values_at_the_limits_are_accepted(
    client: AsyncClient, session: AsyncSession, settings: Settings, body: dict[str, Any]
) -> None:
    user = await create_user(session)

    response = await client.post(URL, json=body, headers=bearer(user, settings))

    assert response.status_code == 201
    assert response.json()["job"]["job_name"] == body["job_name"]
    assert response.json()["job"]["job_type"] == body["job_type"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"job_name": "", "job_type": "simple"}, "job_name", id="empty-name"),
        pytest.param({"job_name": "   ", "job_type": "simple"}, "job_name", id="blank-name"),
        pytest.param({"job_name": "x" * 256, "job_type": "simple"}, "job_name", id="256-name"),
        pytest.param({"job_type": "simple"}, "job_name", id="missing-name"),
        pytest.param({"job_name": "n", "job_type": "Report"}, "job_type", id="uppercase-type"),
        pytest.param({"job_name": "n", "job_type": "my report"}, "job_type", id="space-in-type"),
        pytest.param({"job_name": "n", "job_type": "a" * 51}, "job_type", id="51-char-type"),
        pytest.param({"job_name": "n", "job_type": ""}, "job_type", id="empty-type"),
        pytest.param({"job_name": "n"}, "job_type", id="missing-type"),
        pytest.param({"job_name": "n", "job_type": "report"}, "job_type", id="unknown-type"),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": [1, 2]}, "parameters", id="list"
        ),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": "day=1"},
            "parameters",
            id="string",
        ),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": {"seconds": 3601}},
            "parameters",
            id="too-long-a-wait",
        ),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": {"seconds": -1}},
            "parameters",
            id="negative-wait",
        ),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": {"fail": "sometimes"}},
            "parameters",
            id="fail-not-a-bool",
        ),
        pytest.param(
            {"job_name": "n", "job_type": "simple", "parameters": {"sleep": 1}},
            "parameters",
            id="unknown-parameter",
        ),
    ],
)
async def test_invalid_jobs_are_422_and_not_stored(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    body: dict[str, Any],
    field: str,
) -> None:
    user = await create_user(session)

    response = await client.post(URL, json=body, headers=bearer(user, settings))

    assert response.status_code == 422
    payload = response.json()
    assert payload["success"] is False
    assert field in {error["loc"][1] for error in payload["detail"]}
    listed = (await client.get(URL, headers=bearer(user, settings))).json()
    assert listed["total"] == 0


async def test_submitting_without_credentials_is_401(client: AsyncClient) -> None:
    response = await client.post(URL, json={"job_name": "n", "job_type": "simple"})

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication required", "success": False}


async def test_an_unknown_type_names_the_known_ones(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    response = await client.post(
        URL, json={"job_name": "n", "job_type": "report"}, headers=bearer(user, settings)
    )

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "job_type"]
    assert "'report'" in error["msg"]
    assert "simple" in error["msg"]


async def test_parameter_errors_name_each_field(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    response = await client.post(
        URL,
        json={"job_name": "n", "job_type": "simple", "parameters": {"seconds": 1e9, "fail": []}},
        headers=bearer(user, settings),
    )

    assert response.status_code == 422
    locations = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert locations == {("body", "parameters", "seconds"), ("body", "parameters", "fail")}

"""GET /api/job-types: what a submit may ask for."""

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import bearer, create_user


async def test_lists_simple_with_the_json_schema_of_its_parameters(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    response = await client.get("/api/job-types", headers=bearer(user, settings))

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    by_name = {job_type["name"]: job_type for job_type in body["job_types"]}
    simple = by_name["simple"]
    assert simple["description"]
    properties = simple["parameters_schema"]["properties"]
    assert properties["seconds"]["type"] == "number"
    assert (properties["seconds"]["minimum"], properties["seconds"]["maximum"]) == (0, 3600)
    assert properties["seconds"]["default"] == 1
    assert properties["fail"] == {**properties["fail"], "type": "boolean", "default": False}


async def test_every_listed_type_can_be_submitted(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)
    names = [
        t["name"] for t in (await client.get("/api/job-types", headers=headers)).json()["job_types"]
    ]

    for name in names:
        response = await client.post(
            "/api/users/jobs", json={"job_name": "n", "job_type": name}, headers=headers
        )
        assert response.status_code == 201, response.text


async def test_without_credentials_is_401(client: AsyncClient) -> None:
    response = await client.get("/api/job-types")

    assert response.status_code == 401

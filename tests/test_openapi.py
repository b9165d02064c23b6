import json
from typing import Any

from httpx import AsyncClient


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(spec, node)


async def test_the_password_flow_points_at_the_token_endpoint(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    schemes = spec["components"]["securitySchemes"]
    token_urls = [
        scheme["flows"]["password"]["tokenUrl"]
        for scheme in schemes.values()
        if scheme.get("type") == "oauth2" and "password" in scheme.get("flows", {})
    ]
    assert token_urls == ["/api/auth/token"]
    password_scheme = next(name for name, s in schemes.items() if s.get("type") == "oauth2")
    operation = spec["paths"]["/api/users/jobs"]["get"]
    assert any(password_scheme in requirement for requirement in operation["security"])


async def test_listing_jobs_documents_its_200_and_401(client: AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    spec = response.json()
    responses = spec["paths"]["/api/users/jobs"]["get"]["responses"]
    ok = responses["200"]["content"]["application/json"]
    documented = json.dumps([ok, _resolve(spec, ok["schema"])])
    assert "Jobs fetched successfully" in documented
    unauthorized = _resolve(spec, responses["401"]["content"]["application/json"]["schema"])
    assert {"detail", "success"} <= set(unauthorized["properties"])

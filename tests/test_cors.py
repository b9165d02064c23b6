from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import bearer, create_user

URL = "/api/users/jobs"
DASHBOARD = "http://localhost:3000"
EVIL = "http://evil.example"


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }


async def test_preflight_from_the_dashboard_is_allowed_with_credentials(
    client: AsyncClient,
) -> None:
    response = await client.options(URL, headers=_preflight(DASHBOARD))

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == DASHBOARD
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_preflight_from_another_origin_is_not_allowed(client: AsyncClient) -> None:
    response = await client.options(URL, headers=_preflight(EVIL))

    assert "access-control-allow-origin" not in response.headers


async def test_actual_requests_only_expose_responses_to_the_dashboard(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)

    allowed = await client.get(URL, headers={**bearer(user, settings), "Origin": DASHBOARD})
    refused = await client.get(URL, headers={**bearer(user, settings), "Origin": EVIL})

    assert allowed.headers["access-control-allow-origin"] == DASHBOARD
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in refused.headers

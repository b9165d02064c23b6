"""The docs pages work on a machine that reaches no CDN: every asset comes from the API."""

import re

import pytest
from httpx import AsyncClient

ASSET_REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_everything_from_the_api_itself(
    client: AsyncClient, page: str
) -> None:
    response = await client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = ASSET_REFERENCE.findall(response.text)
    assert "/openapi.json" in references
    assets = [ref for ref in references if ref != "/openapi.json"]
    assert assets, "the page loads no script or style at all"
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset}"
        assert not asset.startswith("//"), f"{page} loads {asset} from another host"
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset


async def test_swagger_oauth2_redirect_page_is_served(client: AsyncClient) -> None:
    response = await client.get("/docs/oauth2-redirect")

    assert response.status_code == 200
    assert "oauth2" in response.text.lower()


async def test_the_docs_offer_only_the_password_flow(client: AsyncClient) -> None:
    page = (await client.get("/docs")).text
    spec = (await client.get("/openapi.json")).json()

    schemes = spec["components"]["securitySchemes"].values()
    assert [scheme["type"] for scheme in schemes] == ["oauth2"]
    # Swagger UI's client id and secret fields are hidden: the API reads neither.
    assert 'label[for^="client_id"]' in page
    assert "display: none" in page

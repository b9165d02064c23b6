from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient


async def test_an_unexpected_error_is_a_json_500_a_browser_can_read(app: FastAPI) -> None:
    @app.get("/boom-for-test")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/boom-for-test", headers={"Origin": "http://localhost:3000"})

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "success": False}
    assert "secret internals" not in response.text
    # Without CORS headers the dashboard could only report a network error.
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["x-content-type-options"] == "nosniff"

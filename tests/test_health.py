from pathlib import Path

from httpx import ASGITransport, AsyncClient

from app.core.config import Settings
from app.core.db import dispose_database
from app.main import create_app


async def test_healthz_answers_ok(client: AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_answers_ok_when_the_database_answers(client: AsyncClient) -> None:
    # The app's own engine (not the test's connection) points at the test database.
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_503_when_the_database_does_not_answer(
    settings: Settings, tmp_path: Path
) -> None:
    unreachable = tmp_path / "missing-directory" / "jobs.db"
    app = create_app(
        settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{unreachable}"})
    )
    try:
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="https://testserver"
        ) as client:
            ready = await client.get("/readyz")
            alive = await client.get("/healthz")
    finally:
        await dispose_database(app.state)

    assert ready.status_code == 503
    assert ready.json()["success"] is False
    assert alive.status_code == 200

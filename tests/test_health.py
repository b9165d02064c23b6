from pathlib import Path

from httpx import AsyncClient

from app.core.config import Settings
from tests.apps import open_app


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
    broken = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{unreachable}"})
    async with open_app(broken) as running:
        ready = await running.client.get("/readyz")
        alive = await running.client.get("/healthz")

    assert ready.status_code == 503
    assert ready.json()["success"] is False
    assert alive.status_code == 200

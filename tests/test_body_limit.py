"""Bodies past MAX_BODY_BYTES get a 413 JSON answer before anything reads them
(app/core/body_limit.py)."""

import json
from collections.abc import AsyncIterator

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import bearer, create_user
from tests.hostile import (
    JOBS_URL,
    JSON,
    LIMIT,
    LOGIN_URL,
    REGISTER_URL,
    TOO_LARGE,
    job_total,
    job_with,
)

# Oversized bodies.


async def test_a_body_over_the_limit_with_a_content_length_is_413(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    body = job_with({"blob": "x" * LIMIT})

    response = await client.post(JOBS_URL, content=body, headers={**JSON, **bearer(user, settings)})

    assert int(response.request.headers["content-length"]) > LIMIT
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert await job_total(client, user, settings) == 0


async def test_a_streamed_body_over_the_limit_is_413(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"job_name": "x", "job_type": "simple", "parameters": {"blob": "'
        for _ in range(24):  # 1.5 MiB in 64 KiB chunks, with no length announced
            sent.append(1)
            yield b"x" * (64 * 1024)
        yield b'"}}'

    request = client.build_request(
        "POST", JOBS_URL, content=chunks(), headers={**JSON, **bearer(user, settings)}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"

    response = await client.send(request)

    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert await job_total(client, user, settings) == 0


async def test_the_limit_applies_before_authentication_and_to_every_route(
    client: AsyncClient,
) -> None:
    body = json.dumps({"email": "a@example.com", "password": "x" * LIMIT}).encode()

    for url in (REGISTER_URL, LOGIN_URL, JOBS_URL, "/api/no-such-route"):
        response = await client.post(url, content=body, headers=JSON)
        assert response.status_code == 413, url
        assert response.json() == TOO_LARGE


async def test_a_body_just_under_the_limit_is_accepted(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    # Parameters are a job type's few fields; JSON's own whitespace fills the body.
    valid = job_with({"seconds": 0})
    body = valid[:-1] + b" " * (LIMIT - len(valid)) + b"}"
    assert len(body) == LIMIT

    response = await client.post(JOBS_URL, content=body, headers={**JSON, **bearer(user, settings)})

    assert response.status_code == 201

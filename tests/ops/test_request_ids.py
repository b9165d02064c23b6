"""Request ids: a sane X-Request-ID is kept, echoed and logged; anything else is replaced by a
fresh id; every answer, errors included, carries the id of its request."""

import re

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.service import JobService
from tests.factories import bearer, create_user
from tests.ops.conftest import AppBuilder
from tests.ops.logparse import console_access_lines

GENERATED = re.compile(r"^[0-9a-f]{32}$")  # asgi-correlation-id's uuid4().hex


def _request_id(response: Response) -> str:
    values = response.headers.get_list("x-request-id")
    assert len(values) == 1, values
    return values[0]


@pytest.mark.parametrize(
    "incoming",
    ["abc-123", "A.b_c:9", "0" * 128, "4f0c1d0e-6e36-4a3f-9a43-5b1d4f3c2a10"],
    ids=["plain", "punctuation", "128-chars", "uuid"],
)
async def test_a_sane_request_id_is_echoed_and_logged(
    incoming: str, capsys: pytest.CaptureFixture[str], build_app: AppBuilder
) -> None:
    ops = await build_app(log_format="console")
    capsys.readouterr()

    response = await ops.client.get("/healthz", headers={"X-Request-ID": incoming})

    assert response.status_code == 200
    assert _request_id(response) == incoming
    lines = console_access_lines(capsys.readouterr().out)
    assert [line.request_id for line in lines] == [incoming]


@pytest.mark.parametrize(
    "incoming",
    [
        "a" * 300,
        "a" * 129,
        "abc 123",
        "abc\n123",
        "abc\r\nX-Injected: 1",
        "abc\t123",
        "abc/123",
        "caf\u00e9".encode(),  # httpx sends str headers as ASCII only
        "<script>",
    ],
    ids=["300-chars", "129-chars", "space", "newline", "crlf", "tab", "slash", "non-ascii", "html"],
)
async def test_an_insane_request_id_is_replaced_by_a_generated_one(
    incoming: str | bytes, capsys: pytest.CaptureFixture[str], build_app: AppBuilder
) -> None:
    ops = await build_app(log_format="console")
    capsys.readouterr()

    response = await ops.client.get("/healthz", headers={"X-Request-ID": incoming})

    assert response.status_code == 200
    request_id = _request_id(response)
    text = incoming.decode() if isinstance(incoming, bytes) else incoming
    assert request_id != text
    assert GENERATED.match(request_id)
    output = capsys.readouterr().out
    [line] = console_access_lines(output)
    assert line.request_id == request_id
    assert text not in output


async def test_without_a_request_id_each_request_gets_a_fresh_one(
    capsys: pytest.CaptureFixture[str], build_app: AppBuilder
) -> None:
    ops = await build_app(log_format="console")
    capsys.readouterr()

    ids = [_request_id(await ops.client.get("/healthz")) for _ in range(5)]

    assert all(GENERATED.match(request_id) for request_id in ids), ids
    assert len(set(ids)) == len(ids)
    lines = console_access_lines(capsys.readouterr().out)
    assert [line.request_id for line in lines] == ids


async def _error_answers(client: AsyncClient, auth: dict[str, str]) -> dict[str, Response]:
    return {
        "401": await client.get("/api/users/jobs", headers={"X-Request-ID": "err-401"}),
        "404 job": await client.get(
            "/api/users/jobs/999999999", headers={**auth, "X-Request-ID": "err-404-job"}
        ),
        "404 route": await client.get("/nothing/here", headers={"X-Request-ID": "err-404-route"}),
        "422": await client.post(
            "/api/auth/register", json={"email": "nope"}, headers={"X-Request-ID": "err-422"}
        ),
        "403 csrf": await client.post(
            "/api/auth/login",
            json={"email": "a@example.com", "password": "whatever pass"},
            headers={"Origin": "https://evil.example", "X-Request-ID": "err-403-csrf"},
        ),
        "405": await client.delete("/healthz", headers={"X-Request-ID": "err-405"}),
    }


async def test_error_answers_carry_the_request_id(
    build_app: AppBuilder, session: AsyncSession
) -> None:
    ops = await build_app()
    user = await create_user(session)

    answers = await _error_answers(ops.client, bearer(user, ops.settings))

    for name, response in answers.items():
        assert str(response.status_code) == name.split()[0], (name, response.text)
        assert response.json()["success"] is False
        assert _request_id(response) == f"err-{name.replace(' ', '-')}", name


async def test_error_answers_without_an_incoming_id_get_a_generated_one(
    build_app: AppBuilder,
) -> None:
    ops = await build_app()

    unauthenticated = await ops.client.get("/api/users/jobs")
    invalid = await ops.client.post("/api/auth/register", json={})

    assert (unauthenticated.status_code, invalid.status_code) == (401, 422)
    assert GENERATED.match(_request_id(unauthenticated))
    assert GENERATED.match(_request_id(invalid))
    assert _request_id(unauthenticated) != _request_id(invalid)


async def test_an_unexpected_500_carries_the_request_id(
    build_app: AppBuilder, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = await build_app()
    user = await create_user(session)

    async def broken_stats(*_args: object) -> dict[str, int]:
        raise RuntimeError("ops test: stats exploded")

    # The stats route breaks.
    monkeypatch.setattr(JobService, "stats", broken_stats)

    response = await ops.client.get(
        "/api/users/jobs/stats", headers={**bearer(user, ops.settings), "X-Request-ID": "err-500"}
    )

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "success": False}
    assert _request_id(response) == "err-500"

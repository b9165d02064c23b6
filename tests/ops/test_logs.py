"""Logs: one access line per request (method, route template, status, duration, user, request id),
JSON lines when LOG_FORMAT=json, a traceback for an unexpected error, and never a secret.

Each test builds its app after `capsys` is active, so the app's handler writes into capsys.
"""

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.service import JobService
from tests.factories import PASSWORD, bearer, create_job, create_user
from tests.ops.conftest import AppBuilder
from tests.ops.logparse import (
    console_access_lines,
    console_lines,
    json_access_lines,
    json_lines,
)

JOB_ROUTE = "/api/users/jobs/{job_id}"
ACCESS_KEYS = {"method", "route", "path", "status", "duration_ms", "user_id", "request_id"}


async def test_console_one_access_line_per_request_with_the_route_template(
    capsys: pytest.CaptureFixture[str], build_app: AppBuilder, session: AsyncSession
) -> None:
    ops = await build_app(log_format="console")
    user = await create_user(session)
    job = await create_job(session, user)
    capsys.readouterr()

    response = await ops.client.get(
        f"/api/users/jobs/{job.job_id}",
        headers={**bearer(user, ops.settings), "X-Request-ID": "log-line-1"},
    )
    assert response.status_code == 200
    [line] = console_access_lines(capsys.readouterr().out)

    assert line.level == "INFO"
    assert line.request_id == "log-line-1"
    assert line.message.startswith(f"GET {JOB_ROUTE} 200 ")
    assert line.fields["method"] == "GET"
    assert line.fields["route"] == JOB_ROUTE  # the template: ids never become a label
    assert line.fields["path"] == f"/api/users/jobs/{job.job_id}"
    assert line.fields["status"] == "200"
    assert float(line.fields["duration_ms"]) >= 0
    assert line.fields["user_id"] == str(user.user_id)


async def test_console_every_kind_of_answer_gets_exactly_one_line(
    capsys: pytest.CaptureFixture[str], build_app: AppBuilder, session: AsyncSession
) -> None:
    ops = await build_app(log_format="console")
    user = await create_user(session)
    auth = bearer(user, ops.settings)
    capsys.readouterr()

    requests = [
        ("GET", "/healthz", {}, None, "/healthz", "200", None),
        ("GET", "/api/users/jobs", {}, None, "/api/users/jobs", "401", None),
        ("GET", "/api/users/jobs/999999999", auth, None, JOB_ROUTE, "404", str(user.user_id)),
        ("GET", "/no/such/route/42", {}, None, "unmatched", "404", None),
        ("POST", "/api/users/jobs", auth, {"job_type": "x"}, "/api/users/jobs", "422",
         str(user.user_id)),
        ("POST", "/api/users/jobs", auth, {"job_name": "n", "job_type": "simple"},
         "/api/users/jobs", "201", str(user.user_id)),
    ]  # fmt: skip
    for method, path, headers, body, route, status, user_id in requests:
        request_id = f"each-{uuid.uuid4().hex[:8]}"
        response = await ops.client.request(
            method, path, headers={**headers, "X-Request-ID": request_id}, json=body
        )
        assert str(response.status_code) == status, (path, response.text)
        lines = console_access_lines(capsys.readouterr().out)
        assert len(lines) == 1, (path, lines)
        [line] = lines
        assert line.request_id == request_id
        assert line.fields["method"] == method
        assert line.fields["route"] == route
        assert line.fields["status"] == status
        # Unauthenticated answers name no user; the 422 comes after authentication.
        assert line.fields.get("user_id") == user_id, path


async def test_json_every_stdout_line_is_a_json_object_with_the_access_fields(
    capsys: pytest.CaptureFixture[str], build_app: AppBuilder, session: AsyncSession
) -> None:
    ops = await build_app(log_format="json")
    user = await create_user(session)
    job = await create_job(session, user)
    capsys.readouterr()

    authenticated = await ops.client.get(
        f"/api/users/jobs/{job.job_id}",
        headers={**bearer(user, ops.settings), "X-Request-ID": "json-line-1"},
    )
    anonymous = await ops.client.get("/api/users/jobs", headers={"X-Request-ID": "json-line-2"})
    assert (authenticated.status_code, anonymous.status_code) == (200, 401)

    output = capsys.readouterr().out
    records = json_lines(output)  # every line, not only the access lines
    assert records
    first, second = json_access_lines(output)
    assert first.keys() >= ACCESS_KEYS
    assert first["level"] == "INFO"
    assert first["method"] == "GET"
    assert first["route"] == JOB_ROUTE
    assert first["path"] == f"/api/users/jobs/{job.job_id}"
    assert first["status"] == 200
    assert isinstance(first["duration_ms"], int | float)
    assert first["duration_ms"] >= 0
    assert first["user_id"] == user.user_id
    assert first["request_id"] == "json-line-1"

    assert second.keys() >= ACCESS_KEYS
    assert (second["route"], second["status"]) == ("/api/users/jobs", 401)
    assert second["user_id"] is None
    assert second["request_id"] == "json-line-2"


async def test_json_is_the_production_default_and_console_the_development_one() -> None:
    from app.core.config import Settings

    def resolved(**values: Any) -> str:
        settings = Settings(_env_file=None, secret_key="k" * 40, **values)  # type: ignore[call-arg]
        return settings.resolved_log_format

    assert resolved(environment="production") == "json"
    assert resolved(environment="development") == "console"
    assert resolved(environment="test") == "console"
    assert resolved(environment="production", log_format="console") == "console"
    assert resolved(environment="development", log_format="json") == "json"


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_an_unexpected_error_logs_a_traceback_with_the_request_id(
    log_format: str,
    capsys: pytest.CaptureFixture[str],
    build_app: AppBuilder,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ops = await build_app(log_format=log_format)
    user = await create_user(session)

    async def broken_stats(*_args: object) -> dict[str, int]:
        raise RuntimeError("ops test: stats exploded")

    # The stats route breaks.
    monkeypatch.setattr(JobService, "stats", broken_stats)
    capsys.readouterr()

    response = await ops.client.get(
        "/api/users/jobs/stats", headers={**bearer(user, ops.settings), "X-Request-ID": "boom-1"}
    )
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "success": False}
    assert "stats exploded" not in response.text

    output = capsys.readouterr().out
    if log_format == "console":
        assert "Traceback (most recent call last):" in output
        assert "RuntimeError: ops test: stats exploded" in output
        [error] = [line for line in console_lines(output) if line.level == "ERROR"]
        assert error.request_id == "boom-1"
        assert "Unhandled error on GET /api/users/jobs/stats" in error.message
        [access] = console_access_lines(output)
        assert (access.fields["route"], access.fields["status"]) == ("/api/users/jobs/stats", "500")
        assert access.request_id == "boom-1"
    else:
        records = json_lines(output)  # the traceback stays inside one JSON line
        [error] = [record for record in records if record["level"] == "ERROR"]
        assert error["request_id"] == "boom-1"
        assert "Traceback (most recent call last):" in error["exc_info"]
        assert "RuntimeError: ops test: stats exploded" in error["exc_info"]
        [access] = json_access_lines(output)
        assert (access["route"], access["status"]) == ("/api/users/jobs/stats", 500)
        assert access["user_id"] == user.user_id


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_no_password_token_or_secret_key_is_ever_logged(
    log_format: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    build_app: AppBuilder,
    session: AsyncSession,
) -> None:
    secret_key = f"ops-log-secret-key-{uuid.uuid4().hex}"
    # DEBUG: the most the app can be made to log.
    ops = await build_app(log_format=log_format, log_level="DEBUG", secret_key=secret_key)
    client = ops.client
    email = f"ops-secrets-{uuid.uuid4().hex[:10]}@example.com"
    password = f"ops password {uuid.uuid4().hex}"
    wrong_password = f"ops wrong one {uuid.uuid4().hex}"

    registered = await client.post(
        "/api/auth/register", json={"email": email, "password": password, "full_name": "Ops"}
    )
    assert registered.status_code == 201
    login = await client.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200
    token = login.json()["access_token"]
    cookie_token = login.cookies.get("access_token")
    client.cookies.clear()
    jobs = await client.get("/api/users/jobs", headers={"Authorization": f"Bearer {token}"})
    assert jobs.status_code == 200
    failed = await client.post("/api/auth/login", json={"email": email, "password": wrong_password})
    assert failed.status_code == 401
    form = await client.post("/api/auth/token", data={"username": email, "password": password})
    assert form.status_code == 200
    form_token = form.json()["access_token"]
    too_short = await client.post("/api/auth/register", json={"email": email, "password": "short"})
    assert too_short.status_code == 422
    # The factory user's password, sent wrong-cased, covers the path for an existing hash too.
    other = await create_user(session)
    await client.post("/api/auth/login", json={"email": other.email, "password": PASSWORD.upper()})

    captured = capsys.readouterr()
    output = captured.out + captured.err
    records = "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
    assert "app.access" in output  # the capture did see the app's lines
    secrets = {
        "password": password,
        "wrong password": wrong_password,
        "short password": "short",
        "factory password": PASSWORD.upper(),
        "SECRET_KEY": secret_key,
    }
    for name, jwt in (("token", token), ("cookie", cookie_token), ("form token", form_token)):
        assert jwt
        _header, payload, signature = jwt.split(".")
        secrets[name] = jwt
        secrets[f"{name} payload"] = payload
        secrets[f"{name} signature"] = signature
    for name, value in secrets.items():
        assert value not in output, f"the {name} is in the log output"
        assert value not in records, f"the {name} is in a log record"

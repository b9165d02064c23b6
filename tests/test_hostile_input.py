"""Input meant to break things gets a 4xx JSON answer, never a 500, and changes nothing."""

import json
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from tests.factories import PASSWORD, bearer, create_job, create_user
from tests.hostile import (
    JOBS_URL,
    JSON,
    LOGIN_URL,
    REGISTER_URL,
    TOKEN_URL,
    assert_client_error,
    job_total,
)

# NUL characters, which PostgreSQL cannot store.


@pytest.mark.parametrize(
    "job",
    [
        pytest.param({"job_name": "a\x00b", "job_type": "simple"}, id="job_name"),
        pytest.param({"job_name": "x", "job_type": "sim\x00ple"}, id="job_type"),
        pytest.param(
            {"job_name": "x", "job_type": "simple", "parameters": {"k": "v\x00"}}, id="value"
        ),
        pytest.param({"job_name": "x", "job_type": "simple", "parameters": {"k\x00": 1}}, id="key"),
        pytest.param(
            {"job_name": "x", "job_type": "simple", "parameters": {"k": [[1, ["\x00"]]]}},
            id="nested-list",
        ),
        pytest.param(
            {"job_name": "x", "job_type": "simple", "parameters": {"a": {"b": [{"\x00": 1}]}}},
            id="nested-key",
        ),
    ],
)
async def test_nul_characters_in_a_job_are_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, job: dict[str, Any]
) -> None:
    user = await create_user(session)

    response = await client.post(JOBS_URL, json=job, headers=bearer(user, settings))

    assert_client_error(response, 422)
    assert await job_total(client, user, settings) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "a\x00b@example.com", "password": "long enough"}, id="email"),
        pytest.param({"email": "nul@example.com", "password": "long\x00enough"}, id="password"),
        pytest.param(
            {"email": "nul@example.com", "password": "long enough", "full_name": "A\x00B"},
            id="full_name",
        ),
    ],
)
async def test_nul_characters_in_a_registration_are_422(
    client: AsyncClient, body: dict[str, str]
) -> None:
    response = await client.post(REGISTER_URL, json=body)

    assert_client_error(response, 422)
    # Nothing was stored: the clean email is still free.
    clean = {"email": "nul@example.com", "password": "long enough"}
    assert (await client.post(REGISTER_URL, json=clean)).status_code == 201


async def test_nul_characters_in_a_login_are_422(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    for body in (
        {"email": user.email + "\x00", "password": PASSWORD},
        {"email": user.email, "password": PASSWORD + "\x00"},
    ):
        assert_client_error(await client.post(LOGIN_URL, json=body), 422)
    for form in (
        {"username": user.email + "\x00", "password": PASSWORD},
        {"username": user.email, "password": PASSWORD + "\x00"},
    ):
        assert_client_error(await client.post(TOKEN_URL, data=form), 422)


async def test_nul_characters_in_a_password_change_are_422(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)

    response = await client.post(
        "/api/users/me/password",
        json={"current_password": PASSWORD, "new_password": "new\x00password"},
        headers=headers,
    )

    assert_client_error(response, 422)
    assert (await client.get("/api/users/me", headers=headers)).status_code == 200


# Overlong and malformed values.

# Well formed label by label (64-character local part, 63-character labels), 332 long in all.
LONG_EMAIL = "a" * 64 + "@" + ".".join(["b" * 63] * 4) + ".example.com"


async def test_job_fields_at_their_limits_are_accepted_and_past_them_422(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)

    fits = await client.post(
        JOBS_URL, json={"job_name": "n" * 255, "job_type": "simple"}, headers=headers
    )
    assert fits.status_code == 201
    for job in (
        {"job_name": "n" * 256, "job_type": "simple"},
        {"job_name": "n" * 100_000, "job_type": "simple"},
        {"job_name": "x", "job_type": "t" * 51},
    ):
        assert_client_error(await client.post(JOBS_URL, json=job, headers=headers), 422)
    assert await job_total(client, user, settings) == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": LONG_EMAIL}, id="email-over-320"),
        pytest.param({"email": "a" * 2000 + "@example.com"}, id="email-huge"),
        pytest.param({"full_name": "n" * 256}, id="full_name-256"),
    ],
)
async def test_overlong_registration_fields_are_422(
    client: AsyncClient, body: dict[str, str]
) -> None:
    response = await client.post(
        REGISTER_URL, json={"email": "long@example.com", "password": "long enough", **body}
    )

    assert_client_error(response, 422)


async def test_overlong_login_emails_are_422(client: AsyncClient) -> None:
    email = LONG_EMAIL

    assert_client_error(await client.post(LOGIN_URL, json={"email": email, "password": "x"}), 422)
    assert_client_error(
        await client.post(TOKEN_URL, data={"username": email, "password": "x"}), 422
    )


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"job_name": "x", "job_type": "simple",}', id="trailing-comma"),
        pytest.param(b"{'job_name': 'x'}", id="single-quotes"),
        pytest.param(b"", id="empty"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"a string"', id="string"),
        pytest.param(b'{"job_name": NaN, "job_type": "simple"}', id="nan"),
    ],
)
async def test_malformed_json_is_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, content: bytes
) -> None:
    user = await create_user(session)

    response = await client.post(
        JOBS_URL, content=content, headers={**JSON, **bearer(user, settings)}
    )

    assert_client_error(response, 422)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data"],
)
async def test_a_body_that_is_not_declared_json_is_refused(
    client: AsyncClient, session: AsyncSession, settings: Settings, content_type: str
) -> None:
    user = await create_user(session)
    body = json.dumps({"job_name": "x", "job_type": "simple"}).encode()

    response = await client.post(
        JOBS_URL, content=body, headers={"Content-Type": content_type, **bearer(user, settings)}
    )

    assert_client_error(response, 400, 415, 422)
    assert await job_total(client, user, settings) == 0


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"job_name": "\xff\xfe", "job_type": "simple"}', id="invalid-bytes"),
        pytest.param(b'{"job_name": "\xc3", "job_type": "simple"}', id="truncated-sequence"),
        pytest.param(b'{"job_name": "\xed\xa0\x80", "job_type": "simple"}', id="surrogate"),
        pytest.param(b'{"job_name": "\\ud800", "job_type": "simple"}', id="escaped-surrogate"),
    ],
)
async def test_invalid_utf8_is_a_client_error(
    client: AsyncClient, session: AsyncSession, settings: Settings, content: bytes
) -> None:
    user = await create_user(session)

    response = await client.post(
        JOBS_URL, content=content, headers={**JSON, **bearer(user, settings)}
    )

    assert_client_error(response)
    assert await job_total(client, user, settings) == 0


def _nested_job(depth: int) -> bytes:
    nested = "[" * depth + "]" * depth
    return b'{"job_name": "x", "job_type": "simple", "parameters": {"deep": %s}}' % (
        nested.encode()
    )


# Past what the JSON parser takes; within it but past the NUL check's recursion; within that but
# past what the response serializer can write back.
@pytest.mark.parametrize("depth", [100_000, 5_000, 990, 700, 500, 400, 300, 256])
async def test_pathologically_nested_parameters_are_a_client_error(
    client: AsyncClient, session: AsyncSession, settings: Settings, depth: int
) -> None:
    user = await create_user(session)

    response = await client.post(
        JOBS_URL, content=_nested_job(depth), headers={**JSON, **bearer(user, settings)}
    )

    assert_client_error(response)
    assert await job_total(client, user, settings) == 0


async def test_moderately_nested_parameters_the_type_does_not_know_are_422_naming_them(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)

    created = await client.post(JOBS_URL, content=_nested_job(20), headers={**JSON, **headers})

    assert created.status_code == 422
    assert [error["loc"] for error in created.json()["detail"]] == [["body", "parameters", "deep"]]
    assert await job_total(client, user, settings) == 0


# Unknown fields.


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        pytest.param(
            "POST",
            JOBS_URL,
            {"job_name": "x", "job_type": "simple", "status": "completed"},
            id="job-status",
        ),
        pytest.param(
            "POST",
            JOBS_URL,
            {"job_name": "x", "job_type": "simple", "user_id": 1},
            id="job-owner",
        ),
        pytest.param(
            "POST", JOBS_URL, {"job_name": "x", "job_type": "simple", "job_id": 1}, id="job-id"
        ),
        pytest.param(
            "POST",
            REGISTER_URL,
            {"email": "extra@example.com", "password": "long enough", "is_admin": True},
            id="register-admin",
        ),
        pytest.param(
            "POST",
            LOGIN_URL,
            {"email": "extra@example.com", "password": "x", "remember": True},
            id="login",
        ),
        pytest.param(
            "POST",
            "/api/users/me/password",
            {"current_password": PASSWORD, "new_password": "long enough", "user_id": 1},
            id="password-change",
        ),
        pytest.param(
            "PATCH",
            "/api/admin/users/{user_id}",
            {"is_active": True, "is_admin": True},
            id="admin-user",
        ),
        pytest.param(
            "PATCH",
            "/api/admin/jobs/{job_id}",
            {"status": "running", "user_id": 1},
            id="admin-job",
        ),
    ],
)
async def test_unknown_fields_are_422_and_change_nothing(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    method: str,
    url: str,
    body: dict[str, Any],
) -> None:
    admin = await create_user(session, is_admin=True)
    job = await create_job(session, admin)
    url = url.format(user_id=admin.user_id, job_id=job.job_id)

    response = await client.request(method, url, json=body, headers=bearer(admin, settings))

    assert_client_error(response, 422)
    assert await job_total(client, admin, settings) == 1
    job_now = await client.get(f"{JOBS_URL}/{job.job_id}", headers=bearer(admin, settings))
    assert job_now.json()["job"]["status"] == "pending"
    assert (await client.post(LOGIN_URL, json={"email": admin.email, "password": PASSWORD})).json()[
        "user"
    ]["is_admin"] is True

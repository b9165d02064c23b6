"""Input meant to break things gets a 4xx JSON answer, never a 500, and changes nothing."""

import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import security
from app.core.config import Settings
from app.models import User
from tests.factories import PASSWORD, bearer, create_job, create_user

JOBS_URL = "/api/users/jobs"
REGISTER_URL = "/api/auth/register"
LOGIN_URL = "/api/auth/login"
TOKEN_URL = "/api/auth/token"
JSON = {"Content-Type": "application/json"}
LIMIT = 1024 * 1024  # settings.max_body_bytes
TOO_LARGE = {"detail": "Request body too large", "success": False}


def _assert_client_error(response: Response, *allowed: int) -> None:
    assert response.status_code != 500, response.text
    if allowed:
        assert response.status_code in allowed, (response.status_code, response.text)
    else:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["success"] is False


async def _job_total(client: AsyncClient, user: User, settings: Settings) -> int:
    response = await client.get(JOBS_URL, headers=bearer(user, settings))
    assert response.status_code == 200
    total: int = response.json()["total"]
    return total


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _job_with(parameters: Any) -> bytes:
    return json.dumps({"job_name": "x", "job_type": "simple", "parameters": parameters}).encode()


# Oversized bodies.


async def test_a_body_over_the_limit_with_a_content_length_is_413(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    body = _job_with({"blob": "x" * LIMIT})

    response = await client.post(JOBS_URL, content=body, headers={**JSON, **bearer(user, settings)})

    assert int(response.request.headers["content-length"]) > LIMIT
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert await _job_total(client, user, settings) == 0


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
    assert await _job_total(client, user, settings) == 0


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
    # Parameters are a job type's few fields now; JSON's own whitespace fills the body.
    valid = _job_with({"seconds": 0})
    body = valid[:-1] + b" " * (LIMIT - len(valid)) + b"}"
    assert len(body) == LIMIT

    response = await client.post(JOBS_URL, content=body, headers={**JSON, **bearer(user, settings)})

    assert response.status_code == 201


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

    _assert_client_error(response, 422)
    assert await _job_total(client, user, settings) == 0


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

    _assert_client_error(response, 422)
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
        _assert_client_error(await client.post(LOGIN_URL, json=body), 422)
    for form in (
        {"username": user.email + "\x00", "password": PASSWORD},
        {"username": user.email, "password": PASSWORD + "\x00"},
    ):
        _assert_client_error(await client.post(TOKEN_URL, data=form), 422)


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

    _assert_client_error(response, 422)
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
        _assert_client_error(await client.post(JOBS_URL, json=job, headers=headers), 422)
    assert await _job_total(client, user, settings) == 1


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

    _assert_client_error(response, 422)


async def test_overlong_login_emails_are_422(client: AsyncClient) -> None:
    email = LONG_EMAIL

    _assert_client_error(await client.post(LOGIN_URL, json={"email": email, "password": "x"}), 422)
    _assert_client_error(
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

    _assert_client_error(response, 422)


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

    _assert_client_error(response, 400, 415, 422)
    assert await _job_total(client, user, settings) == 0


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

    _assert_client_error(response)
    assert await _job_total(client, user, settings) == 0


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

    _assert_client_error(response)
    assert await _job_total(client, user, settings) == 0


async def test_moderately_nested_parameters_the_type_does_not_know_are_422_naming_them(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    headers = bearer(user, settings)

    created = await client.post(JOBS_URL, content=_nested_job(20), headers={**JSON, **headers})

    assert created.status_code == 422
    assert [error["loc"] for error in created.json()["detail"]] == [["body", "parameters", "deep"]]
    assert await _job_total(client, user, settings) == 0


# Ids and cursors.

OUT_OF_RANGE_IDS = ["0", "-1", str(2**63), str(10**30), "abc", "1.5", "1e3", "%00"]


@pytest.mark.parametrize("job_id", OUT_OF_RANGE_IDS)
async def test_out_of_range_job_ids_are_404_or_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, job_id: str
) -> None:
    user = await create_user(session)
    admin = await create_user(session, is_admin=True)

    responses = [
        await client.get(f"{JOBS_URL}/{job_id}", headers=bearer(user, settings)),
        await client.post(f"{JOBS_URL}/{job_id}/cancel", headers=bearer(user, settings)),
        await client.patch(
            f"/api/admin/jobs/{job_id}", json={"status": "running"}, headers=bearer(admin, settings)
        ),
    ]

    for response in responses:
        _assert_client_error(response, 404, 422)


@pytest.mark.parametrize("user_id", [*OUT_OF_RANGE_IDS, str(2**31)])
async def test_out_of_range_user_ids_are_404_or_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, user_id: str
) -> None:
    admin = await create_user(session, is_admin=True)

    response = await client.patch(
        f"/api/admin/users/{user_id}", json={"is_active": False}, headers=bearer(admin, settings)
    )

    _assert_client_error(response, 404, 422)


async def test_the_largest_valid_ids_are_404(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    admin = await create_user(session, is_admin=True)
    largest_job = 2**63 - 1

    responses = [
        await client.get(f"{JOBS_URL}/{largest_job}", headers=bearer(user, settings)),
        await client.post(f"{JOBS_URL}/{largest_job}/cancel", headers=bearer(user, settings)),
        await client.patch(
            f"/api/admin/jobs/{largest_job}",
            json={"status": "running"},
            headers=bearer(admin, settings),
        ),
        await client.patch(
            f"/api/admin/users/{2**31 - 1}",
            json={"is_active": False},
            headers=bearer(admin, settings),
        ),
    ]

    for response in responses:
        _assert_client_error(response, 404)


def _cursor(created_at: Any, job_id: Any) -> str:
    return _b64(json.dumps([created_at, job_id]).encode())


HOSTILE_CURSORS: dict[str, str] = {
    "random-base64": _b64(bytes(range(7, 250, 3))),
    "not-base64": "!!!$$$***",
    "not-json": _b64(b"hello world"),
    "object": _b64(b'{"created_at": "2025-01-01T00:00:00+00:00", "job_id": 1}'),
    "three-items": _b64(b'["2025-01-01T00:00:00+00:00", 1, 2]'),
    "id-as-string": _cursor("2025-01-01T00:00:00+00:00", "1"),
    "id-as-float": _cursor("2025-01-01T00:00:00+00:00", 1.5),
    "id-as-bool": _cursor("2025-01-01T00:00:00+00:00", True),
    "id-null": _cursor("2025-01-01T00:00:00+00:00", None),
    "id-zero": _cursor("2025-01-01T00:00:00+00:00", 0),
    "id-negative": _cursor("2025-01-01T00:00:00+00:00", -5),
    "id-huge": _cursor("2025-01-01T00:00:00+00:00", 2**63),
    "id-enormous": _cursor("2025-01-01T00:00:00+00:00", 10**100),
    "time-as-number": _cursor(1735689600, 1),
    "time-garbled": _cursor("yesterday", 1),
    "time-naive": _cursor("2025-01-01T00:00:00", 1),
    "time-year-1-east": _cursor("0001-01-01T00:00:00+05:00", 1),
    "time-year-9999-west": _cursor("9999-12-31T23:00:00-05:00", 1),
    "utf8-garbage": _b64(b"\xff\xfe\xfd"),
    "300-chars": "A" * 300,
}


@pytest.mark.parametrize("cursor", HOSTILE_CURSORS.values(), ids=HOSTILE_CURSORS.keys())
async def test_garbled_or_forged_cursors_are_400_or_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, cursor: str
) -> None:
    user = await create_user(session)
    await create_job(session, user)

    response = await client.get(JOBS_URL, params={"cursor": cursor}, headers=bearer(user, settings))

    _assert_client_error(response, 400, 422)


# Oversized passwords are refused before any hashing.


@pytest.fixture
def hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 hash or verify the app runs, by name."""
    calls: list[str] = []
    for name in ("hash", "verify"):
        real: Callable[..., Any] = getattr(security._passwords, name)

        def counting(*args: Any, _real: Callable[..., Any] = real, _name: str = name) -> Any:
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(security._passwords, name, counting)
    return calls


OVERSIZED_PASSWORDS = {
    "1025-ascii": "x" * 1025,
    "1026-bytes-513-chars": "é" * 513,
    "4096-bytes-1024-chars": "😀" * 1024,
    "huge": "x" * 200_000,
}


@pytest.mark.parametrize("password", OVERSIZED_PASSWORDS.values(), ids=OVERSIZED_PASSWORDS.keys())
async def test_passwords_over_1024_bytes_are_422_and_never_hashed(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    hashing: list[str],
    password: str,
) -> None:
    user = await create_user(session)
    assert len(password.encode()) > 1024

    responses = {
        "register": await client.post(
            REGISTER_URL, json={"email": "big@example.com", "password": password}
        ),
        "login": await client.post(LOGIN_URL, json={"email": user.email, "password": password}),
        "token": await client.post(TOKEN_URL, data={"username": user.email, "password": password}),
        "change-new": await client.post(
            "/api/users/me/password",
            json={"current_password": PASSWORD, "new_password": password},
            headers=bearer(user, settings),
        ),
        "change-current": await client.post(
            "/api/users/me/password",
            json={"current_password": password, "new_password": "long enough"},
            headers=bearer(user, settings),
        ),
    }

    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 422)
    for response in responses.values():
        _assert_client_error(response, 422)
    assert hashing == []


async def test_a_1024_byte_password_is_still_hashed(
    client: AsyncClient, hashing: list[str]
) -> None:
    # The other side of the limit, so the test above cannot pass by refusing everything.
    response = await client.post(
        REGISTER_URL, json={"email": "limit@example.com", "password": "é" * 512}
    )

    assert response.status_code == 201
    assert hashing == ["hash"]


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

    _assert_client_error(response, 422)
    assert await _job_total(client, admin, settings) == 1
    job_now = await client.get(f"{JOBS_URL}/{job.job_id}", headers=bearer(admin, settings))
    assert job_now.json()["job"]["status"] == "pending"
    assert (await client.post(LOGIN_URL, json={"email": admin.email, "password": PASSWORD})).json()[
        "user"
    ]["is_admin"] is True

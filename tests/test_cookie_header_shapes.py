"""Every shape of Cookie header is read one way: by authentication and by the CSRF check alike.

Whatever the header holds, a cookie-authenticated write from a foreign origin changes nothing,
and the same header from the dashboard's origin authenticates exactly when a read does.
"""

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import User
from tests.factories import access_token, bearer, create_job, create_user

JOBS_URL = "/api/users/jobs"
ME_URL = "/api/users/me"
NEW_JOB = {"job_name": "nightly report", "job_type": "simple"}
TRUSTED = "http://localhost:3000"
FOREIGN = "http://evil.example"
T = "{token}"

# Cookie header lines, with {token} standing for a valid access token. Several lines in one
# entry are sent as several Cookie headers.
SHAPES = {
    "plain": [f"access_token={T}"],
    "json-neighbour-first": ['pref={"theme":"dark"}; access_token=' + T],
    "space-in-neighbour": [f"a=b c; access_token={T}"],
    "quoted-neighbour": [f'a="b;c"; access_token={T}'],
    "backslash-neighbour": [f'a="\\"; access_token={T}'],
    "nameless-neighbour": [f"garbage; access_token={T}"],
    "equals-only-neighbour": [f"=; ==x; access_token={T}"],
    "equals-in-neighbour-value": [f"x=a=b=c; access_token={T}"],
    "quoted-token": [f'access_token="{T}"'],
    "whitespace-around": [f"  access_token \t=\t {T}  ;  other=1 "],
    "no-space-after-semicolon": [f"a=1;access_token={T};b=2"],
    "trailing-semicolons": [f"access_token={T};;;"],
    "empty-neighbours": [f"a=; access_token={T}; b="],
    "duplicate-valid-first": [f"access_token={T}; access_token=stale"],
    "duplicate-valid-last": [f"access_token=stale; access_token={T}"],
    "two-header-lines": ["pref={bad}", f"access_token={T}"],
    "non-ascii-neighbour": [f"n=\u00e9\u00e8; access_token={T}"],
    "control-char-neighbour": [f"n=a\x7fb; access_token={T}"],
    "dollar-attributes": [f"$Version=1; access_token={T}; $Path=/"],
    "case-variant-name": [f"Access_Token={T}"],
    "empty-token": ["access_token="],
}


def _headers(shape: list[str], token: str, origin: str) -> list[tuple[str, bytes]]:
    # Bytes as a browser sends them: UTF-8 where a cookie holds non-ASCII text.
    lines = [("Cookie", line.replace(T, token).encode()) for line in shape]
    return [*lines, ("Origin", origin.encode())]


async def _authenticates(client: AsyncClient, headers: list[tuple[str, bytes]], user: User) -> bool:
    response = await client.get(ME_URL, headers=headers)
    assert response.status_code in {200, 401}, response.text
    return response.status_code == 200 and response.json()["user"]["user_id"] == user.user_id


async def _job_count(client: AsyncClient, user: User, settings: Settings) -> int:
    response = await client.get(JOBS_URL, headers=bearer(user, settings))
    total: int = response.json()["total"]
    return total


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
async def test_a_foreign_write_never_passes_whatever_the_cookie_header_holds(
    client: AsyncClient, session: AsyncSession, settings: Settings, shape: list[str]
) -> None:
    user = await create_user(session)
    job = await create_job(session, user)
    token = access_token(user, settings)

    submitted = await client.post(JOBS_URL, json=NEW_JOB, headers=_headers(shape, token, FOREIGN))
    cancelled = await client.post(
        f"{JOBS_URL}/{job.job_id}/cancel", headers=_headers(shape, token, FOREIGN)
    )

    assert submitted.status_code in {401, 403}, submitted.text
    assert cancelled.status_code in {401, 403}, cancelled.text
    assert await _job_count(client, user, settings) == 1
    detail = await client.get(f"{JOBS_URL}/{job.job_id}", headers=bearer(user, settings))
    assert detail.json()["job"]["status"] == "pending"


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
async def test_from_the_dashboard_a_write_authenticates_exactly_when_a_read_does(
    client: AsyncClient, session: AsyncSession, settings: Settings, shape: list[str]
) -> None:
    user = await create_user(session)
    token = access_token(user, settings)
    headers = _headers(shape, token, TRUSTED)

    reads = await _authenticates(client, headers, user)
    response = await client.post(JOBS_URL, json=NEW_JOB, headers=headers)

    assert response.status_code == (201 if reads else 401), response.text


@pytest.mark.parametrize(
    ("shape", "authenticates"),
    [
        pytest.param(SHAPES["json-neighbour-first"], True, id="unparseable-neighbour"),
        pytest.param(SHAPES["quoted-token"], True, id="quoted-token"),
        pytest.param(SHAPES["whitespace-around"], True, id="whitespace"),
        pytest.param(SHAPES["two-header-lines"], True, id="two-lines"),
        pytest.param(SHAPES["duplicate-valid-first"], True, id="first-duplicate-wins"),
        pytest.param(SHAPES["duplicate-valid-last"], False, id="stale-first-duplicate-wins"),
        pytest.param(SHAPES["case-variant-name"], False, id="names-are-case-sensitive"),
        pytest.param(SHAPES["empty-token"], False, id="empty-token"),
    ],
)
async def test_how_the_login_cookie_is_found(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    shape: list[str],
    authenticates: bool,
) -> None:
    user = await create_user(session)
    headers = _headers(shape, access_token(user, settings), TRUSTED)

    assert await _authenticates(client, headers, user) is authenticates


async def test_an_empty_bearer_header_does_not_exempt_a_cookie_write_from_the_check(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    token = access_token(user, settings)

    response = await client.post(
        JOBS_URL,
        json=NEW_JOB,
        headers={"Authorization": "Bearer  ", "Cookie": f"access_token={token}", "Origin": FOREIGN},
    )

    assert response.status_code == 403
    assert await _job_count(client, user, settings) == 0

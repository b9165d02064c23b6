"""JSON that parses in Python but that PostgreSQL (or any other JSON reader) refuses: every JSON
body is held to one set of rules, and breaking one is a 422 that says which, never a 500."""


import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.models import User
from tests.factories import PASSWORD, bearer, create_user

JOBS_URL = "/api/users/jobs"
JSON = {"Content-Type": "application/json"}

# Raw JSON texts of values that must not get in, with a word the error message must hold.
HOSTILE_VALUES = {
    "nan": ("NaN", "finite"),
    "infinity": ("Infinity", "finite"),
    "minus-infinity": ("-Infinity", "finite"),
    "overflowing-float": ("1e309", "finite"),
    "overflowing-negative-float": ("-2.5e400", "finite"),
    "huge-integer": ("1" + "0" * 400, "range"),
    "past-pythons-digit-limit": ("9" * 5000, "range"),
    "lone-high-surrogate": ('"\\ud800"', "surrogate"),
    "lone-low-surrogate": ('"ok \\udfff"', "surrogate"),
    "reversed-pair": ('"\\ude00\\ud83d"', "surrogate"),
    "nul": ('"a\\u0000b"', "NUL"),
    "surrogate-key": ('{"\\ud800": 1}', "surrogate"),
    "nul-key": ('{"\\u0000": 1}', "NUL"),
    "duplicate-key": ('{"a": 1, "a": 2}', "unique"),
}


def _job_body(value: str, *, depth: int = 3) -> str:
    """A job whose parameters hold `value` `depth` levels down, beside ordinary values."""
    nested = value
    for level in range(depth):
        nested = f'{{"level{level}": [1, "two", {nested}]}}'
    return f'{{"job_name": "x", "job_type": "simple", "parameters": {nested}}}'


def _assert_invalid_json(response: Response, word: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["success"] is False
    message = body["detail"][0]["msg"]
    assert message.startswith("Invalid JSON:"), message
    assert word.lower() in message.lower(), message


async def _job_total(client: AsyncClient, user: User, settings: Settings) -> int:
    response = await client.get(JOBS_URL, headers=bearer(user, settings))
    total: int = response.json()["total"]
    return total


@pytest.mark.parametrize(("value", "word"), HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
@pytest.mark.parametrize("depth", [0, 3, 12])
async def test_hostile_values_in_job_parameters_are_422_and_store_nothing(
    client: AsyncClient,
    session: AsyncSession,
    settings: Settings,
    value: str,
    word: str,
    depth: int,
) -> None:
    user = await create_user(session)
    body = _job_body(value, depth=depth) if depth else _job_body(f'{{"v": {value}}}', depth=0)

    response = await client.post(
        JOBS_URL, content=body.encode(), headers={**JSON, **bearer(user, settings)}
    )

    _assert_invalid_json(response, word)
    assert await _job_total(client, user, settings) == 0


@pytest.mark.parametrize(
    ("body", "word"),
    [
        pytest.param('{"job_name": "\\ud800", "job_type": "simple"}', "surrogate", id="job-name"),
        pytest.param(
            '{"email": "a@example.com", "password": "pass\\udbffword"}', "surrogate", id="login"
        ),
        pytest.param(
            '{"job_name": "a", "job_name": "b", "job_type": "simple"}', "unique", id="dup"
        ),
    ],
)
async def test_hostile_strings_in_ordinary_fields_are_422(
    client: AsyncClient, session: AsyncSession, settings: Settings, body: str, word: str
) -> None:
    user = await create_user(session)
    url = JOBS_URL if "job_name" in body else "/api/auth/login"

    response = await client.post(
        url, content=body.encode(), headers={**JSON, **bearer(user, settings)}
    )

    _assert_invalid_json(response, word)


def _json_body_operations(app: FastAPI) -> list[tuple[str, str]]:
    operations = []
    for path, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                operations.append(
                    (method.upper(), path.replace("{job_id}", "1").replace("{user_id}", "1"))
                )
    return operations


async def test_every_json_body_is_held_to_the_same_rules(
    app: FastAPI, client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    admin = await create_user(session, is_admin=True)
    operations = _json_body_operations(app)
    assert len(operations) >= 6  # register, login, jobs, password, admin status, admin users

    for method, path in operations:
        for value, word in (("NaN", "finite"), ('"\\ud800"', "surrogate")):
            response = await client.request(
                method,
                path,
                content=f'{{"anything": {value}}}'.encode(),
                headers={**JSON, **bearer(admin, settings)},
            )
            _assert_invalid_json(response, word)


async def test_pathologically_deep_json_is_422_with_a_clear_message(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    depth = 200_000  # about 400 KB, under the body limit; past Python's recursion limit
    body = '{"job_name": "x", "job_type": "simple", "parameters": {"a": ' + "[" * depth
    body += "]" * depth + "}}"

    response = await client.post(
        JOBS_URL, content=body.encode(), headers={**JSON, **bearer(user, settings)}
    )

    _assert_invalid_json(response, "nested")


async def test_values_at_the_edges_of_the_rules_pass_them_and_meet_the_job_types_model(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    body = (
        '{"job_name": "x", "job_type": "simple", "parameters": {'
        '"largest-double": 1.7976931348623157e308, "smallest-double": -1.7976931348623157e308, '
        '"tiny": 5e-324, "big-integer": 9223372036854775808, "emoji-pair": "\\ud83d\\ude00", '
        '"\\u00e9-key": "\\u00e9", "nested": [[[[{"k": [1, 2.5, null, true, "s"]}]]]]}}'
    )

    response = await client.post(
        JOBS_URL, content=body.encode(), headers={**JSON, **bearer(user, settings)}
    )

    # Not "Invalid JSON": the rules let every value through, and the `simple` type refuses
    # each name it does not know, one field error apiece.
    assert response.status_code == 422, response.text
    errors = {tuple(error["loc"]): error["type"] for error in response.json()["detail"]}
    names = ["largest-double", "smallest-double", "tiny", "big-integer", "emoji-pair"]
    names += ["\u00e9-key", "nested"]
    assert errors == {("body", "parameters", name): "extra_forbidden" for name in names}


async def test_values_at_the_edges_a_job_type_takes_are_stored_and_read_back(
    client: AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await create_user(session)
    body = (
        '{"job_name": "\\ud83d\\ude00 caf\\u00e9", "job_type": "simple",'
        ' "parameters": {"seconds": 5e-324, "fail": false}}'
    )

    created = await client.post(
        JOBS_URL, content=body.encode(), headers={**JSON, **bearer(user, settings)}
    )

    assert created.status_code == 201, created.text
    job_id = created.json()["job"]["job_id"]
    read = (await client.get(f"{JOBS_URL}/{job_id}", headers=bearer(user, settings))).json()
    assert read["job"]["job_name"] == "\U0001f600 caf\u00e9"
    # PostgreSQL's jsonb keeps numbers as numeric and writes the smallest double out in full
    # digits: the same number, read as a double.
    assert read["job"]["parameters"] == {"seconds": 5e-324, "fail": False}


async def test_a_login_with_a_clean_body_still_works(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session)

    response = await client.post(
        "/api/auth/login",
        content=f'{{"email": "{user.email}", "password": "{PASSWORD}"}}'.encode(),
        headers=JSON,
    )

    assert response.status_code == 200, response.text

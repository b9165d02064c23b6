"""One person's address is one account, however it is spelled: full-width letters, decomposed
accents, case (Unicode case folding, so `ß` is `ss`) and the domain's IDNA forms all name the
same account, at registration, at both login endpoints and in the CLI."""

import asyncio
import unicodedata
import uuid

import pytest
from alembic import command
from httpx import AsyncClient
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.db import create_engine
from app.models import User
from tests.conftest import alembic_config
from tests.factories import PASSWORD, create_user
from tests.test_cli import run_cli

REGISTER_URL = "/api/auth/register"
LOGIN_URL = "/api/auth/login"
TOKEN_URL = "/api/auth/token"


def _fullwidth(text: str) -> str:
    """ASCII letters, digits and `@` as their full-width compatibility forms."""
    return "".join(
        chr(ord(c) + 0xFEE0) if c.isascii() and (c.isalnum() or c == "@") else c for c in text
    )


# (registered address, another spelling of it)
SPELLINGS = {
    "full-width-local-part": ("ada@example.com", _fullwidth("ada") + "@example.com"),
    "full-width-everything": ("ada@example.com", _fullwidth("ada@example") + ".com"),
    "upper-case": ("ada@example.com", "ADA@EXAMPLE.COM"),
    "decomposed-accent": (
        "jos\u00e9@example.com",
        unicodedata.normalize("NFD", "jos\u00e9@example.com"),
    ),
    "decomposed-upper": (
        "jos\u00e9@example.com",
        unicodedata.normalize("NFD", "JOS\u00c9@example.com"),
    ),
    "sharp-s": ("strasse@example.com", "Stra\u00dfe@example.com"),
    "idna-unicode-vs-ascii": ("ada@b\u00fccher.example", "ada@xn--bcher-kva.example"),
    "idna-upper": ("ada@xn--bcher-kva.example", "ada@B\u00dcCHER.example"),
    "ligature": ("office@example.com", "o\ufb03ce@example.com"),
    "surrounding-space": ("ada@example.com", "  ada@example.com "),
}


async def _register(client: AsyncClient, email: str) -> tuple[int, str | None]:
    response = await client.post(REGISTER_URL, json={"email": email, "password": PASSWORD})
    body = response.json()
    return response.status_code, body["user"]["email"] if response.status_code == 201 else None


@pytest.mark.parametrize(("original", "other"), SPELLINGS.values(), ids=SPELLINGS.keys())
async def test_another_spelling_of_a_registered_address_is_the_same_account(
    client: AsyncClient, original: str, other: str
) -> None:
    status, stored = await _register(client, original)
    assert status == 201

    assert await _register(client, other) == (409, None)

    for url, payload in (
        (LOGIN_URL, {"json": {"email": other, "password": PASSWORD}}),
        (TOKEN_URL, {"data": {"username": other, "password": PASSWORD}}),
    ):
        response = await client.post(url, **payload)  # type: ignore[arg-type]
        assert response.status_code == 200, (url, response.text)
    me = await client.get(
        "/api/users/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["user"]["email"] == stored


@pytest.mark.parametrize(("original", "other"), SPELLINGS.values(), ids=SPELLINGS.keys())
async def test_every_spelling_is_stored_as_one_canonical_address(
    client: AsyncClient, original: str, other: str
) -> None:
    status, stored = await _register(client, other)

    assert status == 201
    assert stored is not None
    assert stored == stored.strip()
    assert stored == unicodedata.normalize("NFKC", stored)
    assert stored.split("@")[0] == stored.split("@")[0].casefold()


async def test_failed_logins_count_against_the_account_whatever_the_spelling(
    client: AsyncClient, session: AsyncSession
) -> None:
    user = await create_user(session, email="ada@example.com")
    spellings = [_fullwidth("ada") + "@example.com", "ADA@example.com", "ada@EXAMPLE.com"]

    for attempt in range(5):
        email = spellings[attempt % len(spellings)]
        wrong = await client.post(LOGIN_URL, json={"email": email, "password": "wrong guess"})
        assert wrong.status_code == 401

    blocked = await client.post(TOKEN_URL, data={"username": user.email, "password": PASSWORD})
    assert blocked.status_code == 429


async def test_a_username_that_is_no_address_matches_no_account(
    client: AsyncClient, session: AsyncSession
) -> None:
    await create_user(session, email="ada@example.com")

    for username in ("ada", "ada@", "ada@example..com", "@example.com"):
        response = await client.post(TOKEN_URL, data={"username": username, "password": PASSWORD})
        assert response.status_code == 401, username


async def test_the_cli_refuses_a_look_alike_of_an_existing_account(
    database_url: str, engine: AsyncEngine
) -> None:
    local = f"cli{uuid.uuid4().hex[:10]}"
    code, _, _ = await run_cli(
        database_url, "create-user", "--email", f"{local}@example.com", "--password", PASSWORD
    )
    try:
        assert code == 0
        look_alike = _fullwidth(local.upper()) + "@Example.com"
        code, _, stderr = await run_cli(
            database_url, "create-user", "--email", look_alike, "--password", PASSWORD
        )
        assert code == 1
        assert "already exists" in stderr
    finally:
        async with engine.begin() as connection:
            await connection.execute(delete(User).where(User.email == f"{local}@example.com"))


# --- the data migration ------------------------------------------------------------------

BEFORE_EMAIL_MIGRATION = "7c3f9e1b5a20"


async def _insert(database_url: str, emails: list[str]) -> list[int]:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            return [
                (
                    await connection.execute(
                        text(
                            "INSERT INTO users (email, hashed_password) VALUES (:email, 'x') "
                            "RETURNING user_id"
                        ),
                        {"email": email},
                    )
                ).scalar_one()
                for email in emails
            ]
    finally:
        await engine.dispose()


async def _emails(database_url: str, ids: list[int]) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            rows = await connection.execute(
                select(User.user_id, User.email).where(User.user_id.in_(ids))
            )
            found = dict(rows.all())
            await connection.execute(delete(User).where(User.user_id.in_(ids)))
        return [found[user_id] for user_id in ids]
    finally:
        await engine.dispose()


def test_the_migration_rewrites_stored_addresses_and_leaves_collisions_alone(
    database_url: str,
) -> None:
    config = alembic_config(database_url)
    tag = uuid.uuid4().hex[:8]
    legacy = [
        f"m{tag}a@example.com",  # already canonical
        f"m{tag}stra\u00dfe@example.com",
        _fullwidth(f"m{tag}b") + "@example.com",
        f"m{tag}\uff41@example.com",  # a look-alike of the first: left for an operator
        f"m{tag}c@xn--bcher-kva.example",
    ]
    command.downgrade(config, BEFORE_EMAIL_MIGRATION)
    try:
        ids = asyncio.run(_insert(database_url, legacy))
    finally:
        command.upgrade(config, "head")

    assert asyncio.run(_emails(database_url, ids)) == [
        f"m{tag}a@example.com",
        f"m{tag}strasse@example.com",
        f"m{tag}b@example.com",
        f"m{tag}\uff41@example.com",
        f"m{tag}c@b\u00fccher.example",
    ]

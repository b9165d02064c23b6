"""`python -m app create-user`, run as an operator would: in a subprocess against the database.

The subprocess commits for real, outside any test transaction, so each test uses a unique
email and deletes what it created.
"""

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.security import verify_password
from app.models import User
from tests.apps import TEST_SECRET_KEY
from tests.conftest import ROOT

PASSWORD = "a long enough cli password"


async def run_cli(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET_KEY,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
async def email(engine: AsyncEngine) -> AsyncIterator[str]:
    """A fresh mixed-case email; whatever user the CLI made with it is deleted afterwards."""
    address = f"Cli.{uuid.uuid4().hex[:12]}@Example.com"
    yield address
    async with engine.begin() as connection:
        await connection.execute(delete(User).where(User.email == address.lower()))


async def _stored(engine: AsyncEngine, email: str) -> User | None:
    async with engine.connect() as connection:
        row = (await connection.execute(select(User).where(User.email == email.lower()))).first()
    return None if row is None else User(**row._asdict())


async def test_create_user_makes_an_admin_once_per_email(
    database_url: str, engine: AsyncEngine, email: str
) -> None:
    code, stdout, stderr = await run_cli(
        database_url,
        "create-user",
        "--email",
        email,
        "--password",
        PASSWORD,
        "--full-name",
        "Ops Admin",
        "--admin",
    )

    assert code == 0, stderr
    assert email.lower() in stdout
    user = await _stored(engine, email)
    assert user is not None
    assert user.email == email.lower()
    assert user.is_admin is True
    assert user.is_active is True
    assert user.full_name == "Ops Admin"
    assert await verify_password(PASSWORD, user.hashed_password)

    # The same address in another case is the same account: refused, and the first one stays.
    code, _, stderr = await run_cli(
        database_url, "create-user", "--email", email.upper(), "--password", "another password"
    )

    assert code != 0
    assert "already exists" in stderr
    again = await _stored(engine, email)
    assert again is not None
    assert again.user_id == user.user_id
    assert again.is_admin is True
    assert await verify_password(PASSWORD, again.hashed_password)


async def test_create_user_refuses_a_short_password(
    database_url: str, engine: AsyncEngine, email: str
) -> None:
    code, stdout, stderr = await run_cli(
        database_url, "create-user", "--email", email, "--password", "short7!"
    )

    assert code != 0
    assert "password" in stderr
    assert "short7!" not in stderr + stdout
    assert await _stored(engine, email) is None

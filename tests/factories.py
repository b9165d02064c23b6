"""Small async factories for test data, written straight through the test's session."""

import itertools
from datetime import datetime
from functools import lru_cache
from typing import Any

from passlib.context import CryptContext
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import create_access_token
from app.models import Job, JobStatus, User

PASSWORD = "correct horse battery"
# What the API shows of a user: never the password hash, nor internal counters.
USER_FIELDS = frozenset(
    {"user_id", "email", "full_name", "is_active", "is_admin", "created_at", "updated_at"}
)
_numbers = itertools.count(1)


@lru_cache(maxsize=1)
def factory_password_hash() -> str:
    # One argon2 hash shared by every factory user: hashing per user would dominate the suite.
    hashed: str = CryptContext(schemes=["argon2"]).hash(PASSWORD)
    return hashed


async def create_user(
    session: AsyncSession,
    *,
    email: str | None = None,
    is_admin: bool = False,
    is_active: bool = True,
    full_name: str | None = "Test User",
) -> User:
    user = User(
        email=email or f"user{next(_numbers)}@example.com",
        full_name=full_name,
        hashed_password=factory_password_hash(),
        is_admin=is_admin,
        is_active=is_active,
    )
    session.add(user)
    await session.commit()
    return user


async def create_job(
    session: AsyncSession,
    user: User,
    *,
    job_name: str = "test",
    job_type: str = "simple",
    status: JobStatus = JobStatus.PENDING,
    created_at: datetime | None = None,
    parameters: dict[str, Any] | None = None,
) -> Job:
    job = Job(
        user_id=user.user_id,
        job_name=job_name,
        job_type=job_type,
        status=status,
        parameters=parameters,
    )
    if created_at is not None:
        job.created_at = created_at
    session.add(job)
    await session.commit()
    return job


def bearer(user: User, settings: Settings) -> dict[str, str]:
    token = create_access_token(user.user_id, user.token_version, settings).token
    return {"Authorization": f"Bearer {token}"}


def access_token(user: User, settings: Settings) -> str:
    """A fresh token for the user, as login would issue it (for cookies or hand-made variants)."""
    return create_access_token(user.user_id, user.token_version, settings).token


def cookie_attributes(set_cookie: str) -> tuple[str, str, dict[str, str | None]]:
    """A Set-Cookie header as (name, value, attributes); attribute names are lowercased and
    valueless flags such as HttpOnly map to None."""
    first, *rest = (part.strip() for part in set_cookie.split(";"))
    name, _, value = first.partition("=")
    attributes: dict[str, str | None] = {}
    for part in rest:
        key, has_value, attribute_value = part.partition("=")
        attributes[key.lower()] = attribute_value if has_value else None
    return name, value, attributes

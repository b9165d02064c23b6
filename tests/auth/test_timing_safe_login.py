"""A login costs one password check whatever is wrong with it, so its timing does not tell which
emails have accounts; a throttled attempt costs none."""

from collections.abc import Callable

import pytest
from httpx import AsyncClient
from passlib.context import CryptContext
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, create_user

LOGIN_URL = "/api/auth/login"
TOKEN_URL = "/api/auth/token"


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords the app checked against a hash, in order."""
    checked: list[str] = []
    real_verify: Callable[..., bool] = CryptContext.verify

    def counting_verify(
        context: CryptContext, password: str, hashed: str, *args: object, **kwargs: object
    ) -> bool:
        checked.append(password)
        return real_verify(context, password, hashed, *args, **kwargs)

    monkeypatch.setattr(CryptContext, "verify", counting_verify)
    return checked


async def test_an_unknown_email_costs_one_password_check(
    client: AsyncClient, verifications: list[str]
) -> None:
    response = await client.post(
        LOGIN_URL, json={"email": "nobody@example.com", "password": "a guess"}
    )

    assert response.status_code == 401
    assert verifications == ["a guess"]


async def test_a_wrong_password_costs_one_password_check(
    client: AsyncClient, session: AsyncSession, verifications: list[str]
) -> None:
    user = await create_user(session)

    response = await client.post(LOGIN_URL, json={"email": user.email, "password": "a guess"})

    assert response.status_code == 401
    assert verifications == ["a guess"]


async def test_an_inactive_account_costs_one_password_check(
    client: AsyncClient, session: AsyncSession, verifications: list[str]
) -> None:
    user = await create_user(session, is_active=False)

    response = await client.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})

    assert response.status_code == 401
    assert verifications == [PASSWORD]


async def test_the_form_login_behaves_the_same(
    client: AsyncClient, session: AsyncSession, verifications: list[str]
) -> None:
    user = await create_user(session)

    unknown = await client.post(
        TOKEN_URL, data={"username": "nobody@example.com", "password": "a guess"}
    )
    wrong = await client.post(TOKEN_URL, data={"username": user.email, "password": "a guess"})

    assert (unknown.status_code, wrong.status_code) == (401, 401)
    assert verifications == ["a guess", "a guess"]


async def test_a_throttled_attempt_checks_no_password(
    client: AsyncClient, session: AsyncSession, verifications: list[str]
) -> None:
    user = await create_user(session)
    for _ in range(5):
        await client.post(LOGIN_URL, json={"email": user.email, "password": "a guess"})
    verifications.clear()

    response = await client.post(LOGIN_URL, json={"email": user.email, "password": PASSWORD})

    assert response.status_code == 429
    assert verifications == []

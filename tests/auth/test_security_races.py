"""Changes that guard a security rule hold under real concurrency on PostgreSQL: requests in
flight at once, each in its own transaction on its own connection, on committed data.

- Changing the password ends every earlier token: of two changes made with one token at once,
  exactly one succeeds, and only its new token works.
- At least one active admin remains, also when admins deactivate each other at once.
- A deactivation racing a password change leaves no token that reactivation would revive.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import create_sessionmaker
from app.models import User
from tests.factories import PASSWORD, bearer
from tests.live_app import LiveApp, live_app

pytestmark = pytest.mark.postgres_only

ME_URL = "/api/users/me"
PASSWORD_URL = "/api/users/me/password"
ADMIN_USERS_URL = "/api/admin/users"
ROUNDS = 5


@pytest.fixture
async def live(database_url: str, engine: AsyncEngine) -> AsyncIterator[LiveApp]:
    async with live_app(database_url, engine) as live:
        yield live


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _works(client: AsyncClient, token: str) -> bool:
    response = await client.get(ME_URL, headers=_auth(token))
    assert response.status_code in {200, 401}
    return response.status_code == 200


async def test_two_password_changes_with_one_token_at_once_one_wins(live: LiveApp) -> None:
    client = await live.client()
    for round_ in range(ROUNDS):
        user = await live.user(f"pw{round_}")
        token = bearer(user, live.settings)["Authorization"].removeprefix("Bearer ")
        new_passwords = [f"first new password {round_}", f"second new password {round_}"]

        responses = await asyncio.gather(
            *(
                client.post(
                    PASSWORD_URL,
                    json={"current_password": PASSWORD, "new_password": new},
                    headers=_auth(token),
                )
                for new in new_passwords
            )
        )

        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200, 401], [r.text for r in responses]
        winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
        assert await _works(client, responses[winner].json()["access_token"])
        assert not await _works(client, token)
        logins = [
            await client.post("/api/auth/login", json={"email": user.email, "password": new})
            for new in new_passwords
        ]
        assert [login.status_code for login in logins] == [
            200 if i == winner else 401 for i in range(2)
        ]


async def _active_admins(live: LiveApp, ids: list[int]) -> int:
    async with create_sessionmaker(live.engine)() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.user_id.in_(ids), User.is_active.is_(True), User.is_admin.is_(True))
        )
        return int(count or 0)


async def _deactivate(client: AsyncClient, actor: User, target: User, live: LiveApp) -> Response:
    return await client.patch(
        f"{ADMIN_USERS_URL}/{target.user_id}",
        json={"is_active": False},
        headers=bearer(actor, live.settings),
    )


@pytest.mark.parametrize("admins", [2, 3])
async def test_admins_deactivating_each_other_at_once_leave_one_active(
    live: LiveApp, admins: int
) -> None:
    client = await live.client()
    for round_ in range(ROUNDS):
        group = [await live.user(f"admin{round_}-{i}", is_admin=True) for i in range(admins)]
        # Each deactivates the next one, in a ring: every one of them is someone's target.
        responses = await asyncio.gather(
            *(
                _deactivate(client, actor, group[(i + 1) % admins], live)
                for i, actor in enumerate(group)
            )
        )

        statuses = [response.status_code for response in responses]
        # 401: the actor was deactivated before its request was authenticated; 403: after.
        assert set(statuses) <= {200, 401, 403}, [r.text for r in responses]
        remaining = await _active_admins(live, [admin.user_id for admin in group])
        assert remaining >= 1
        assert remaining == admins - statuses.count(200)


async def test_a_deactivation_racing_a_password_change_leaves_no_token_to_revive(
    live: LiveApp,
) -> None:
    client = await live.client()
    admin = await live.user("referee", is_admin=True)
    for round_ in range(ROUNDS):
        user = await live.user(f"racer{round_}")
        token = bearer(user, live.settings)["Authorization"].removeprefix("Bearer ")

        changed, deactivated = await asyncio.gather(
            client.post(
                PASSWORD_URL,
                json={"current_password": PASSWORD, "new_password": f"raced password {round_}"},
                headers=_auth(token),
            ),
            _deactivate(client, admin, user, live),
        )
        assert deactivated.status_code == 200
        assert changed.status_code in {200, 401}
        reactivated = await client.patch(
            f"{ADMIN_USERS_URL}/{user.user_id}",
            json={"is_active": True},
            headers=bearer(admin, live.settings),
        )
        assert reactivated.status_code == 200

        assert not await _works(client, token)
        if changed.status_code == 200:
            assert not await _works(client, changed.json()["access_token"])

from sqlalchemy import select, update

from app.core.repository import Repository
from app.models import User
from app.users.changes import note_user_changed


class UserRepository(Repository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        """`email` in its canonical form (app/users/emails.py), as stored."""
        return await self.session.scalar(select(User).where(User.email == email))

    async def replace_password(
        self, user_id: int, hashed_password: str, *, token_version: int
    ) -> int | None:
        """Sets the password and ends every earlier token, in one conditional statement: only
        while the user is active and still at `token_version` (the caller's token's). The new
        token version, or None when another change came first (a concurrent change waits for
        this row's lock, then finds the version moved on)."""
        new_version = await self.session.scalar(
            update(User)
            .where(
                User.user_id == user_id,
                User.token_version == token_version,
                User.is_active.is_(True),
            )
            .values(hashed_password=hashed_password, token_version=User.token_version + 1)
            .returning(User.token_version)
            .execution_options(synchronize_session="fetch")
        )
        if new_version is not None:
            note_user_changed(self.session, user_id)
        return new_version

    async def lock_active_admins(self) -> list[User]:
        """Every active admin, their rows locked until the transaction ends (in id order, so
        two transactions never wait on each other crosswise). A concurrent deactivation waits
        here, then sees who is still an active admin."""
        admins = await self.session.scalars(
            select(User)
            .where(User.is_admin.is_(True), User.is_active.is_(True))
            .order_by(User.user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list(admins)

    async def get_for_update(self, user_id: int) -> User | None:
        """The user as committed now, the row locked until the transaction ends."""
        return await self.session.scalar(
            select(User)
            .where(User.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

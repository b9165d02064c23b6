from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, Forbidden, NotFound
from app.core.security import hash_password
from app.models import User
from app.users.emails import normalize_email
from app.users.repository import UserRepository


class UserNotFound(NotFound):
    detail = "User not found"


class EmailTaken(Conflict):
    detail = "A user with this email already exists"


class UserService:
    def __init__(self, session: AsyncSession) -> None:
        self.users = UserRepository(session)
        self.session = session

    async def create_user(
        self, email: str, password: str, full_name: str | None = None, *, is_admin: bool = False
    ) -> User:
        email = normalize_email(email)
        if await self.users.get_by_email(email) is not None:
            raise EmailTaken
        user = User(
            email=email,
            full_name=full_name,
            hashed_password=await hash_password(password),
            is_admin=is_admin,
        )
        try:
            async with self.session.begin_nested():
                return await self.users.add(user)
        except IntegrityError as exc:
            # Two registrations for one email at once: the unique index decides.
            raise EmailTaken from exc

    async def set_active(self, actor_id: int, user_id: int, *, is_active: bool) -> User:
        """At least one active admin remains, also when admins deactivate each other at the
        same moment: the active admins' rows are locked first, so the second of two such
        requests finds its own actor no longer an active admin."""
        active_admins = await self.users.lock_active_admins()
        if actor_id not in {admin.user_id for admin in active_admins}:
            raise Forbidden("Admin privileges required")
        user = await self.users.get_for_update(user_id)
        if user is None:
            raise UserNotFound
        if user.user_id == actor_id and not is_active:
            # Nobody else might be left to undo it.
            raise Conflict("Admins cannot deactivate their own account")
        if user.is_active and not is_active:
            user.token_version += 1  # Reactivation must not bring old tokens back.
        user.is_active = is_active
        await self.session.flush()
        return user

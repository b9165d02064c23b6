from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import NotAuthenticated
from app.core.security import (
    AccessToken,
    InvalidToken,
    burn_password_check,
    create_access_token,
    decode_access_token,
    verify_password,
)
from app.models import User
from app.users.repository import UserRepository


class InvalidCredentials(NotAuthenticated):
    detail = "Incorrect email or password"


class InvalidSession(NotAuthenticated):
    detail = "Invalid or expired token"


@dataclass(frozen=True, slots=True)
class Login:
    user: User
    token: AccessToken


class AuthService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.users = UserRepository(session)
        self.settings = settings

    async def login(self, email: str, password: str) -> Login:
        user = await self.users.get_by_email(email)
        if user is None:
            await burn_password_check(password)
            raise InvalidCredentials
        if not await verify_password(password, user.hashed_password) or not user.is_active:
            raise InvalidCredentials
        token = create_access_token(user.user_id, user.token_version, self.settings)
        return Login(user=user, token=token)

    async def user_for_token(self, token: str) -> User:
        try:
            claims = decode_access_token(token, self.settings)
        except InvalidToken as exc:
            raise InvalidSession from exc
        user = await self.users.get(claims.user_id)
        if user is None or not user.is_active or user.token_version != claims.token_version:
            raise InvalidSession
        return user

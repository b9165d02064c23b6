"""Who is calling: a Bearer token first, else the HTTP-only cookie set at login."""

from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyCookie, OAuth2PasswordBearer

from app.auth.service import AuthService
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.errors import Forbidden, NotAuthenticated
from app.models import User

ACCESS_TOKEN_COOKIE = "access_token"

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
cookie_scheme = APIKeyCookie(
    name=ACCESS_TOKEN_COOKIE,
    auto_error=False,
    description="Set by POST /api/auth/login; HTTP-only, sent by browsers with credentials.",
)


def get_auth_service(session: SessionDep, settings: SettingsDep) -> AuthService:
    return AuthService(session, settings)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def get_current_user(
    auth: AuthServiceDep,
    bearer_token: Annotated[str | None, Depends(bearer_scheme)],
    cookie_token: Annotated[str | None, Depends(cookie_scheme)],
) -> User:
    token = bearer_token or cookie_token
    if not token:
        raise NotAuthenticated
    return await auth.user_for_token(token)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Admin privileges required")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]

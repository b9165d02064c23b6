"""Who is calling: a Bearer token first, else the HTTP-only cookie set at login."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyCookie, OAuth2PasswordBearer

from app.auth.cookies import ACCESS_TOKEN_COOKIE
from app.auth.service import AuthService
from app.auth.throttle import LoginThrottle
from app.core.config import SettingsDep
from app.core.credentials import presented_token
from app.core.db import SessionDep
from app.core.errors import Forbidden, NotAuthenticated
from app.core.http_cache import PRIVATE_CACHE_HEADERS
from app.models import User

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
cookie_scheme = APIKeyCookie(
    name=ACCESS_TOKEN_COOKIE,
    auto_error=False,
    description="Set by POST /api/auth/login; HTTP-only, sent by browsers with credentials.",
)


async def get_auth_service(
    request: Request, session: SessionDep, settings: SettingsDep
) -> AuthService:
    return AuthService(session, settings, request.app.state.login_throttle)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def get_request_token(
    request: Request,
    _bearer: Annotated[str | None, Depends(bearer_scheme)],
    _cookie: Annotated[str | None, Depends(cookie_scheme)],
) -> str | None:
    # The two schemes are declared for the API docs (the Authorize button); the token is read
    # by the one function the CSRF check reads it with, so both see the same credential.
    presented = presented_token(request.headers, ACCESS_TOKEN_COOKIE)
    return presented.token if presented else None


RequestToken = Annotated[str | None, Depends(get_request_token)]


async def get_current_user(
    auth: AuthServiceDep, token: RequestToken, request: Request, response: Response
) -> User:
    if not token:
        raise NotAuthenticated
    user = await auth.user_for_token(token)
    request.state.user_id = user.user_id  # for the access log
    # What an authenticated route answers belongs to this user alone: no shared cache may
    # keep it, and a browser revalidates before reusing it.
    response.headers.update(PRIVATE_CACHE_HEADERS)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Admin privileges required")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


async def client_address(request: Request) -> str:
    """The caller's address; behind a proxy, uvicorn puts the real one here when the proxy is
    listed in FORWARDED_ALLOW_IPS."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


async def spend_password_check(request: Request, client: ClientAddress) -> AsyncIterator[None]:
    """On every route where an unauthenticated caller makes us hash a password: one of the
    client's few concurrent checks, and one of its budget for the window, whatever the email
    (app/auth/throttle.py)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    async with throttle.client_check_slot(client):
        await throttle.spend_client_check(client)
        yield


# Released when the route returns, not once the answer is sent.
PasswordCheckBudget = Depends(spend_password_check, scope="function")

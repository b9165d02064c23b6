"""Who is calling: a Bearer token first, else the HTTP-only cookie set at login. Every
authenticated route depends on `get_caller`."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.caller import Caller
from app.auth.cookies import ACCESS_TOKEN_COOKIE
from app.auth.service import AuthService
from app.auth.throttle import LoginThrottle
from app.context import AppContext, get_context
from app.core.credentials import presented_token
from app.core.db import READ_ONLY_METHODS, SessionDep
from app.core.errors import Forbidden, NotAuthenticated
from app.core.http_cache import PRIVATE_CACHE_HEADERS
from app.models import User

# The one scheme the docs page offers: the password flow, email as username. Browsers use the
# HTTP-only cookie instead, which no page script can read or type in, so it is described here
# rather than offered as a scheme with a value box.
bearer_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/auth/token",
    auto_error=False,
    description=(
        "Log in with your email as username. Browsers are authenticated by the HTTP-only "
        f"`{ACCESS_TOKEN_COOKIE}` cookie that `POST /api/auth/login` sets instead; a Bearer "
        "token wins when both are sent."
    ),
)


def auth_service(context: AppContext, session: AsyncSession) -> AuthService:
    return AuthService(
        session, context.settings, context.login_throttle, context.revalidation_cache
    )


async def get_auth_service(session: SessionDep, request: Request) -> AuthService:
    # The context read directly, not as a dependency: every request resolves this one, and
    # each dependency costs its resolution (docs/benchmarks.md).
    return auth_service(get_context(request), session)


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


# Declared for the API docs (the Authorize button); the token itself is read by the one
# function the CSRF check reads it with, so both see the same credential.
BearerScheme = Annotated[str | None, Depends(bearer_scheme)]


def request_token(request: Request) -> str | None:
    """A Bearer token first, else the login cookie (app/core/credentials.py)."""
    presented = presented_token(request.headers, ACCESS_TOKEN_COOKIE)
    return presented.token if presented else None


async def get_request_token(request: Request, _bearer: BearerScheme) -> str | None:
    return request_token(request)


RequestToken = Annotated[str | None, Depends(get_request_token)]


async def get_caller(
    auth: AuthServiceDep,
    _bearer: BearerScheme,
    request: Request,
    response: Response,
) -> Caller:
    token = request_token(request)
    if not token:
        raise NotAuthenticated
    caller = await auth.caller_for_token(token, read_only=request.method in READ_ONLY_METHODS)
    request.state.user_id = caller.user_id  # for the access log
    # What an authenticated route answers belongs to this user alone: no shared cache may
    # keep it, and a browser revalidates before reusing it.
    response.headers.update(PRIVATE_CACHE_HEADERS)
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]


async def get_current_user(caller: CurrentCaller, auth: AuthServiceDep) -> User:
    return await auth.account(caller)


# The caller's account, for the routes that show or change it.
CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(caller: CurrentCaller) -> Caller:
    if not caller.is_admin:
        raise Forbidden("Admin privileges required")
    return caller


AdminCaller = Annotated[Caller, Depends(get_admin)]


async def client_address(request: Request) -> str:
    """The caller's address; behind a proxy, uvicorn puts the real one here when the proxy is
    listed in FORWARDED_ALLOW_IPS."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


async def spend_password_check(request: Request, client: ClientAddress) -> AsyncIterator[None]:
    """On every route where an unauthenticated caller makes us hash a password: one of the
    client's few concurrent checks, and one of its budget for the window, whatever the email
    (app/auth/throttle.py)."""
    throttle: LoginThrottle = get_context(request).login_throttle
    async with throttle.client_check_slot(client):
        await throttle.spend_client_check(client)
        yield


# Released when the route returns, not once the answer is sent.
PasswordCheckBudget = Depends(spend_password_check, scope="function")

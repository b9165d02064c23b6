from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.auth.dependencies import ACCESS_TOKEN_COOKIE, AuthServiceDep
from app.auth.schemas import (
    LoginRequest,
    LoginResponse,
    MessageResponse,
    RegisterRequest,
    TokenResponse,
)
from app.core.config import Settings, SettingsDep
from app.core.db import SessionDep
from app.core.errors import error_responses
from app.users.schemas import UserRead, UserResponse
from app.users.service import UserService

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _set_token_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        ACCESS_TOKEN_COOKIE,
        token,
        max_age=settings.access_token_lifetime_seconds,
        path="/",
        httponly=True,
        secure=bool(settings.cookie_secure),
        samesite=settings.cookie_samesite,
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserResponse,
    responses=error_responses(409, 422),
)
async def register(body: RegisterRequest, session: SessionDep) -> UserResponse:
    """Create an account. The email is case-insensitive and must not be taken."""
    user = await UserService(session).create_user(body.email, body.password, body.full_name)
    return UserResponse(user=UserRead.model_validate(user), message="User registered successfully")


@router.post("/login", response_model=LoginResponse, responses=error_responses(401, 422))
async def login(
    body: LoginRequest, response: Response, auth: AuthServiceDep, settings: SettingsDep
) -> LoginResponse:
    """Log in with JSON credentials: returns a Bearer token and sets the HTTP-only cookie."""
    result = await auth.login(body.email, body.password)
    _set_token_cookie(response, result.token.token, settings)
    return LoginResponse(
        access_token=result.token.token,
        expires_in=result.token.expires_in,
        user=UserRead.model_validate(result.user),
    )


@router.post("/token", response_model=TokenResponse, responses=error_responses(401, 422))
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], auth: AuthServiceDep
) -> TokenResponse:
    """OAuth2 password flow (username = email): what the docs page's Authorize button calls."""
    result = await auth.login(form.username.lower(), form.password)
    return TokenResponse(access_token=result.token.token, expires_in=result.token.expires_in)


@router.post("/logout", response_model=MessageResponse)
async def logout(response: Response, settings: SettingsDep) -> MessageResponse:
    """Expire the login cookie."""
    response.delete_cookie(
        ACCESS_TOKEN_COOKIE,
        path="/",
        httponly=True,
        secure=bool(settings.cookie_secure),
        samesite=settings.cookie_samesite,
    )
    return MessageResponse(message="Logged out successfully")

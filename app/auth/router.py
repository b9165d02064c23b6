"""Accounts and their sessions: register, log in and out, the caller's own account, and an
admin's switch that deactivates one."""

from typing import Annotated

from fastapi import APIRouter, Form, Path, Response, status

from app.auth.cookies import clear_token_cookie, set_token_cookie
from app.auth.dependencies import (
    AdminCaller,
    AuthServiceDep,
    ClientAddress,
    CurrentUser,
    PasswordCheckBudget,
    RequestToken,
)
from app.auth.schemas import (
    LoginRequest,
    LoginResponse,
    MessageResponse,
    RegisterRequest,
    TokenForm,
    TokenResponse,
)
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.errors import error_responses
from app.core.http_cache import NO_STORE
from app.core.json_values import StrictJSONRoute
from app.users.schemas import PasswordChange, UserRead, UserResponse, UserStatusUpdate
from app.users.service import UserService

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=StrictJSONRoute)
account_router = APIRouter(prefix="/api/users", tags=["users"], route_class=StrictJSONRoute)
admin_router = APIRouter(prefix="/api/admin/users", tags=["admin"], route_class=StrictJSONRoute)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserResponse,
    responses=error_responses(409, 422, 429, 503),
    dependencies=[PasswordCheckBudget],
)
async def register(body: RegisterRequest, session: SessionDep) -> UserResponse:
    """Create an account. The email is case-insensitive and must not be taken."""
    user = await UserService(session).create_user(body.email, body.password, body.full_name)
    return UserResponse(user=UserRead.model_validate(user), message="User registered successfully")


@router.post(
    "/login",
    response_model=LoginResponse,
    responses=error_responses(401, 422, 429, 503),
    dependencies=[PasswordCheckBudget],
)
async def login(
    body: LoginRequest,
    response: Response,
    auth: AuthServiceDep,
    settings: SettingsDep,
    client: ClientAddress,
) -> LoginResponse:
    """Log in with JSON credentials: returns a Bearer token and sets the HTTP-only cookie."""
    result = await auth.login(body.email, body.password, client=client)
    set_token_cookie(response, result.token.token, settings)
    response.headers.update(NO_STORE)
    return LoginResponse(
        access_token=result.token.token,
        expires_in=result.token.expires_in,
        user=UserRead.model_validate(result.user),
    )


@router.post(
    "/token",
    response_model=TokenResponse,
    responses=error_responses(401, 422, 429, 503),
    dependencies=[PasswordCheckBudget],
)
async def token(
    form: Annotated[TokenForm, Form()],
    auth: AuthServiceDep,
    client: ClientAddress,
    response: Response,
) -> TokenResponse:
    """OAuth2 password flow (username = email): what the docs page's Authorize button calls."""
    result = await auth.login(form.username, form.password, client=client)
    response.headers.update(NO_STORE)
    return TokenResponse(access_token=result.token.token, expires_in=result.token.expires_in)


@router.post("/logout", response_model=MessageResponse)
async def logout(
    response: Response, auth: AuthServiceDep, token: RequestToken, settings: SettingsDep
) -> MessageResponse:
    """End this session: the token stops working and the cookie is expired."""
    await auth.logout(token)
    clear_token_cookie(response, settings)
    return MessageResponse(message="Logged out successfully")


@account_router.get("/me", response_model=UserResponse, responses=error_responses(401))
async def read_me(user: CurrentUser) -> UserResponse:
    """The logged-in user."""
    return UserResponse(user=UserRead.model_validate(user), message="User fetched successfully")


@account_router.post(
    "/me/password",
    response_model=TokenResponse,
    responses=error_responses(400, 401, 422, 429, 503),
)
async def change_password(
    body: PasswordChange,
    user: CurrentUser,
    auth: AuthServiceDep,
    response: Response,
    settings: SettingsDep,
    client: ClientAddress,
) -> TokenResponse:
    """Change the password. Every earlier token stops working; this answer carries a new one.
    Wrong current passwords are throttled as failed logins are."""
    token = await auth.change_password(
        user, body.current_password, body.new_password, client=client
    )
    set_token_cookie(response, token.token, settings)
    response.headers.update(NO_STORE)
    return TokenResponse(access_token=token.token, expires_in=token.expires_in)


@admin_router.patch(
    "/{user_id}", response_model=UserResponse, responses=error_responses(401, 403, 404, 409, 422)
)
async def set_user_active(
    user_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: UserStatusUpdate,
    admin: AdminCaller,
    session: SessionDep,
) -> UserResponse:
    """Deactivate (ending every session at once) or reactivate a user."""
    user = await UserService(session).set_active(admin.user_id, user_id, is_active=body.is_active)
    return UserResponse(user=UserRead.model_validate(user), message="User updated")

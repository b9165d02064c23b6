from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.auth.cookies import set_token_cookie
from app.auth.dependencies import AdminUser, AuthServiceDep, ClientAddress, CurrentUser
from app.auth.schemas import TokenResponse
from app.core.config import SettingsDep
from app.core.db import SessionDep
from app.core.errors import error_responses
from app.core.http_cache import NO_STORE
from app.core.json_values import StrictJSONRoute
from app.users.schemas import PasswordChange, UserRead, UserResponse, UserStatusUpdate
from app.users.service import UserService

router = APIRouter(prefix="/api/users", tags=["users"], route_class=StrictJSONRoute)
admin_router = APIRouter(prefix="/api/admin/users", tags=["admin"], route_class=StrictJSONRoute)


@router.get("/me", response_model=UserResponse, responses=error_responses(401))
async def read_me(user: CurrentUser) -> UserResponse:
    """The logged-in user."""
    return UserResponse(user=UserRead.model_validate(user), message="User fetched successfully")


@router.post(
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
    admin: AdminUser,
    session: SessionDep,
) -> UserResponse:
    """Deactivate (ending every session at once) or reactivate a user."""
    user = await UserService(session).set_active(admin, user_id, is_active=body.is_active)
    return UserResponse(user=UserRead.model_validate(user), message="User updated")

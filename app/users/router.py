from fastapi import APIRouter

from app.auth.dependencies import CurrentUser
from app.core.errors import error_responses
from app.users.schemas import UserRead, UserResponse

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get("/me", response_model=UserResponse, responses=error_responses(401))
async def read_me(user: CurrentUser) -> UserResponse:
    """The logged-in user."""
    return UserResponse(user=UserRead.model_validate(user), message="User fetched successfully")

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.schemas import RequestModel
from app.users.schemas import Email, FullName, NewPassword, Password, UserRead


class RegisterRequest(RequestModel):
    email: Email
    password: NewPassword
    full_name: FullName | None = None


class LoginRequest(RequestModel):
    email: Email
    password: Password


class TokenForm(RequestModel):
    """The OAuth2 password grant's form; `username` is the email."""

    model_config = ConfigDict(extra="ignore")

    grant_type: Literal["password"] | None = None
    username: str = Field(min_length=1, max_length=320)
    password: Password
    scope: str = Field(default="", max_length=1000)


class TokenResponse(BaseModel):
    """What the OAuth2 password flow of the docs page expects."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class LoginResponse(TokenResponse):
    user: UserRead
    message: str = "Login successful"
    success: bool = True


class MessageResponse(BaseModel):
    message: str
    success: bool = True

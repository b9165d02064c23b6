from typing import Literal

from pydantic import BaseModel

from app.users.schemas import Email, FullName, NewPassword, Password, UserRead


class RegisterRequest(BaseModel):
    email: Email
    password: NewPassword
    full_name: FullName | None = None


class LoginRequest(BaseModel):
    email: Email
    password: Password


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

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.core.schemas import RequestModel
from app.users.emails import MAX_EMAIL_LENGTH, normalize_email

MIN_PASSWORD_LENGTH = 8
# argon2 would happily hash megabytes; a cap keeps a login from being a CPU lever.
MAX_PASSWORD_BYTES = 1024


def _password_fits(password: str) -> str:
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"Password must be at most {MAX_PASSWORD_BYTES} bytes")
    return password


NewPassword = Annotated[
    str,
    Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_BYTES),
    AfterValidator(_password_fits),
]
Password = Annotated[
    str, Field(min_length=1, max_length=MAX_PASSWORD_BYTES), AfterValidator(_password_fits)
]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
# Refused when not an address; otherwise its canonical form (app/users/emails.py).
Email = Annotated[
    str,
    Field(max_length=MAX_EMAIL_LENGTH, json_schema_extra={"format": "email"}),
    AfterValidator(normalize_email),
]


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: int
    email: str
    full_name: str | None
    is_active: bool
    is_admin: bool
    created_at: datetime
    updated_at: datetime


class PasswordChange(RequestModel):
    current_password: Password
    new_password: NewPassword


class UserStatusUpdate(RequestModel):
    is_active: bool


class UserResponse(BaseModel):
    user: UserRead
    message: str
    success: bool = True

"""Who is calling, and the one rule that says whether their token still holds."""

from dataclasses import dataclass

from app.core.errors import NotAuthenticated
from app.core.security import TokenClaims


class InvalidSession(NotAuthenticated):
    detail = "Invalid or expired token"


@dataclass(frozen=True, slots=True)
class Caller:
    """What a request's token is checked against: the user's row as it stands."""

    user_id: int
    is_active: bool
    is_admin: bool
    token_version: int


def check_token(claims: TokenClaims, caller: Caller | None, *, revoked: bool) -> Caller:
    """Whether a token whose signature and expiry were verified still holds: its user exists
    and is active, it was issued since the user's last password change or deactivation, and it
    was not logged out. Every authenticated request passes here, whether the user's row came
    from the database or from memory (app/auth/revalidation_cache.py)."""
    if (
        caller is None
        or revoked
        or not caller.is_active
        or caller.token_version != claims.token_version
    ):
        raise InvalidSession
    return caller

"""The HTTP-only login cookie."""

from fastapi import Response

from app.core.config import Settings

ACCESS_TOKEN_COOKIE = "access_token"


def set_token_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        ACCESS_TOKEN_COOKIE,
        token,
        max_age=settings.access_token_lifetime_seconds,
        path="/",
        httponly=True,
        secure=bool(settings.cookie_secure),
        samesite=settings.cookie_samesite,
    )


def clear_token_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        ACCESS_TOKEN_COOKIE,
        path="/",
        httponly=True,
        secure=bool(settings.cookie_secure),
        samesite=settings.cookie_samesite,
    )

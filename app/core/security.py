"""Password hashing and access tokens."""

import asyncio
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import ClassVar, TypeVar

from fastapi.concurrency import run_in_threadpool
from jose import JWTError, jwt
from passlib.context import CryptContext

from app.core.config import Settings
from app.core.errors import AppError

JWT_ALGORITHM = "HS256"

_T = TypeVar("_T")
_passwords = CryptContext(schemes=["argon2"], deprecated="auto")


class PasswordHashingBusy(AppError):
    status_code = 503
    detail = "Too many password checks in progress; try again shortly"
    default_headers: ClassVar[Mapping[str, str] | None] = {"Retry-After": "1"}


class PasswordHashingGate:
    """At most `slots` argon2 computations at once; the rest wait their turn (first come, first
    served) for up to `max_wait_seconds`, then get PasswordHashingBusy. Without it a flood of
    logins fills the thread pool with hashes and starves every other request of CPU."""

    def __init__(self, slots: int, max_wait_seconds: float) -> None:
        self.max_wait_seconds = max_wait_seconds
        self._slots = asyncio.Semaphore(slots)

    async def run(self, work: Callable[..., _T], *args: str) -> _T:
        try:
            async with asyncio.timeout(self.max_wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise PasswordHashingBusy from None
        try:
            # argon2 takes ~100 ms of CPU: off the event loop, or every other request waits.
            return await run_in_threadpool(work, *args)
        finally:
            self._slots.release()


# Process-wide, as the CPU it guards is; create_app() sizes it from the settings.
_gate = PasswordHashingGate(os.cpu_count() or 1, 2.0)


def configure_password_hashing(slots: int | None, max_wait_seconds: float) -> None:
    global _gate
    _gate = PasswordHashingGate(slots or os.cpu_count() or 1, max_wait_seconds)


async def hash_password(password: str) -> str:
    return await _gate.run(_passwords.hash, password)


async def verify_password(password: str, hashed_password: str) -> bool:
    return await _gate.run(_passwords.verify, password, hashed_password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    dummy: str = _passwords.hash("dummy password to compare against for unknown accounts")
    return dummy


def _verify_against_dummy(password: str) -> None:
    _passwords.verify(password, _dummy_hash())


async def burn_password_check(password: str) -> None:
    """Spend what a real check costs, so a login for an unknown email is not faster. One turn
    at the gate, as a real check takes."""
    await _gate.run(_verify_against_dummy, password)


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    token_version: int
    jti: str
    expires_at: datetime


def create_access_token(user_id: int, token_version: int, settings: Settings) -> AccessToken:
    now = datetime.now(UTC)
    lifetime = settings.access_token_lifetime_seconds
    claims = {
        "sub": str(user_id),
        "ver": token_version,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.secret_key, algorithm=JWT_ALGORITHM)
    return AccessToken(token=token, expires_in=lifetime)


# What we issue is far shorter; a bound keeps hostile headers out of the claims cache.
MAX_TOKEN_LENGTH = 2048
_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
# The last character of an unpadded base64url segment whose length is 2 or 3 (mod 4) carries
# 4 or 2 bits that encode nothing: in the canonical spelling they are zero.
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def _is_canonical(token: str) -> bool:
    """Whether each of the token's three segments is the one base64url text of its bytes:
    unpadded, nothing outside the alphabet, no stray bits in the last character. A decoder
    that forgives padding (`<token>==`), skips foreign characters or ignores trailing bits
    reads many spellings of one signed token; only the spelling we issued is accepted, so a
    token has one cache entry and one identity."""
    if len(token) > MAX_TOKEN_LENGTH:
        return False
    match = _TOKEN.fullmatch(token)
    if match is None:
        return False
    for segment in match.groups():
        remainder = len(segment) % 4
        if remainder == 1:
            return False
        if remainder and segment[-1] not in _CANONICAL_LAST[remainder]:
            return False
    return True


def decode_access_token(token: str, settings: Settings) -> TokenClaims:
    # Before the cache: a non-canonical spelling must not even take a slot in it.
    if not _is_canonical(token):
        raise InvalidToken
    claims = _verified_claims(token, settings.secret_key)
    # Checked on every use: the verified claims are cached, the clock is not.
    if claims.expires_at <= datetime.now(UTC):
        raise InvalidToken
    return claims


# Every request of a polling dashboard presents the same token, and checking its signature and
# claims again each time is a measurable share of a poll (docs/benchmarks.md). A token is
# immutable, so the outcome for the same token and key cannot change; only expiry can, and it
# is checked per use. Failures are not cached (an exception leaves no entry). Whether the token
# still holds is checked per request (app/auth/caller.py).
@lru_cache(maxsize=4096)
def _verified_claims(token: str, secret_key: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=[JWT_ALGORITHM],
            # python-jose accepts a token with no `exp` unless told to require one. The time
            # check is the caller's, as the result is cached.
            options={
                "verify_exp": False,
                "require_exp": True,
                "require_sub": True,
                "require_iat": True,
                "require_jti": True,
            },
        )
        user_id = int(claims["sub"])
        token_version = int(claims.get("ver", 0))
        jti = str(claims["jti"])
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (JWTError, KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        raise InvalidToken from exc
    if not 0 < user_id < 2**31 or not 0 < len(jti) <= 64:
        raise InvalidToken
    return TokenClaims(user_id=user_id, token_version=token_version, jti=jti, expires_at=expires_at)

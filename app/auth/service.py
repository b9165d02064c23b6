from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.caller import Caller, InvalidSession, check_token
from app.auth.metrics import FAILED_LOGINS
from app.auth.repository import TokenRepository
from app.auth.revalidation_cache import RevalidationCache
from app.auth.throttle import LoginThrottle, TooManyLoginAttempts
from app.core.config import Settings
from app.core.errors import InvalidInput, NotAuthenticated
from app.core.security import (
    AccessToken,
    InvalidToken,
    TokenClaims,
    burn_password_check,
    create_access_token,
    decode_access_token,
    hash_password,
    verify_password,
)
from app.models import User
from app.users.emails import normalize_email
from app.users.repository import UserRepository


class InvalidCredentials(NotAuthenticated):
    detail = "Incorrect email or password"


class WrongCurrentPassword(InvalidInput):
    detail = "Current password is incorrect"


def _canonical_email(login_name: str) -> str | None:
    try:
        return normalize_email(login_name)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Login:
    user: User
    token: AccessToken


class AuthService:
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        throttle: LoginThrottle,
        revalidations: RevalidationCache,
    ) -> None:
        self.users = UserRepository(session)
        self.tokens = TokenRepository(session)
        self.settings = settings
        self.throttle = throttle
        self.revalidations = revalidations

    async def login(self, login_name: str, password: str, *, client: str) -> Login:
        """`login_name` as the caller typed it (the form's username is any text): an address
        counts in its canonical form, and anything that is not one matches no account."""
        email = _canonical_email(login_name)
        key = self.throttle.key(email or login_name, client)
        try:
            await self.throttle.check(key)
        except TooManyLoginAttempts:
            FAILED_LOGINS.labels("throttled").inc()
            raise
        try:
            user = await self._authenticate(email, password)
        except InvalidCredentials:
            FAILED_LOGINS.labels("invalid_credentials").inc()
            await self.throttle.failed(key)
            raise
        await self.throttle.succeeded(key)
        return Login(user=user, token=self._issue(user))

    async def _authenticate(self, email: str | None, password: str) -> User:
        user = None if email is None else await self.users.get_by_email(email)
        if user is None:
            # As slow as a wrong password, so timing does not tell which emails exist.
            await burn_password_check(password)
            raise InvalidCredentials
        if not await verify_password(password, user.hashed_password) or not user.is_active:
            raise InvalidCredentials
        return user

    async def caller_for_token(self, token: str, *, read_only: bool = False) -> Caller:
        """The token's user, if the token still holds (`check_token`). For a request that only
        reads, the user may come from memory (RevalidationCache); otherwise from the database."""
        claims = self._claims(token)
        if read_only and (remembered := self.revalidations.lookup(claims)) is not None:
            return check_token(claims, remembered, revoked=False)
        generation = self.revalidations.generation()
        caller, revoked = await self.tokens.caller_and_revocation(claims.user_id, claims.jti)
        caller = check_token(claims, caller, revoked=revoked)
        self.revalidations.remember(claims, caller, generation)
        return caller

    async def account(self, caller: Caller) -> User:
        """The caller's own row, for what shows or changes the account."""
        user = await self.users.get(caller.user_id)
        if user is None:  # deleted since its token was checked
            raise InvalidSession
        return user

    async def logout(self, token: str | None) -> None:
        """End this token's session: it stops working even though it has not expired."""
        if not token:
            return
        try:
            claims = decode_access_token(token, self.settings)
        except InvalidToken:
            return  # Nothing to end; the cookie is cleared all the same.
        if await self.users.get(claims.user_id) is None:
            return
        await self.tokens.purge_expired(datetime.now(UTC))
        await self.tokens.revoke(claims.jti, claims.user_id, claims.expires_at)

    async def change_password(
        self, user: User, current: str, new: str, *, client: str
    ) -> AccessToken:
        """Every token issued before the change stops working; the caller gets a fresh one.
        Wrong current passwords count as failed logins do (same account, same client, same
        budget). Of two changes made with one token at once, one wins; the other is refused
        as its token no longer holds."""
        key = self.throttle.key(user.email, client)
        try:
            await self.throttle.check(key)
        except TooManyLoginAttempts:
            FAILED_LOGINS.labels("throttled").inc()
            raise
        if not await verify_password(current, user.hashed_password):
            FAILED_LOGINS.labels("wrong_current_password").inc()
            await self.throttle.failed(key)
            raise WrongCurrentPassword
        new_version = await self.users.replace_password(
            user.user_id, await hash_password(new), token_version=user.token_version
        )
        if new_version is None:
            raise InvalidSession
        await self.throttle.succeeded(key)
        return create_access_token(user.user_id, new_version, self.settings)

    def _issue(self, user: User) -> AccessToken:
        return create_access_token(user.user_id, user.token_version, self.settings)

    def _claims(self, token: str) -> TokenClaims:
        try:
            return decode_access_token(token, self.settings)
        except InvalidToken as exc:
            raise InvalidSession from exc

from datetime import datetime

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.auth.caller import Caller
from app.core.repository import Repository
from app.models import RevokedToken, User
from app.users.changes import note_user_changed

# Run on every authenticated request that memory does not answer: built once, with
# parameters; plain columns, no ORM entity to build.
_CALLER_AND_REVOCATION = select(
    User.user_id,
    User.is_active,
    User.is_admin,
    User.token_version,
    exists().where(RevokedToken.jti == bindparam("jti")).label("revoked"),
).where(User.user_id == bindparam("user_id"))


class TokenRepository(Repository[RevokedToken]):
    model = RevokedToken

    async def caller_and_revocation(self, user_id: int, jti: str) -> tuple[Caller | None, bool]:
        """The token's user (None if there is none) and whether the token was logged out, in
        one round trip."""
        # On the session's connection, as Core: no ORM entities to build, so none of the ORM's
        # per-statement work.
        connection = await self.session.connection()
        result = await connection.execute(_CALLER_AND_REVOCATION, {"user_id": user_id, "jti": jti})
        row = result.first()
        if row is None:
            return None, False
        user_id, is_active, is_admin, token_version, revoked = row
        return Caller(user_id, is_active, is_admin, token_version), bool(revoked)

    async def revoke(self, jti: str, user_id: int, expires_at: datetime) -> None:
        values = {"jti": jti, "user_id": user_id, "expires_at": expires_at}
        insert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        await self.session.execute(insert(RevokedToken).values(values).on_conflict_do_nothing())
        note_user_changed(self.session, user_id)

    async def purge_expired(self, now: datetime) -> None:
        await self.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))

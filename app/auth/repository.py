from datetime import datetime

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.core.db import note_user_changed
from app.core.repository import Repository
from app.models import RevokedToken, User

# Run on every authenticated request: built once, with parameters, not per call.
_USER_AND_REVOCATION = select(
    User, exists().where(RevokedToken.jti == bindparam("jti")).label("revoked")
).where(User.user_id == bindparam("user_id"))


class TokenRepository(Repository[RevokedToken]):
    model = RevokedToken

    async def user_and_revocation(self, user_id: int, jti: str) -> tuple[User, bool] | None:
        """The token's user and whether the token was revoked, in one round trip."""
        result = await self.session.execute(_USER_AND_REVOCATION, {"user_id": user_id, "jti": jti})
        row = result.first()
        return None if row is None else (row[0], bool(row[1]))

    async def revoke(self, jti: str, user_id: int, expires_at: datetime) -> None:
        values = {"jti": jti, "user_id": user_id, "expires_at": expires_at}
        insert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        await self.session.execute(insert(RevokedToken).values(values).on_conflict_do_nothing())
        note_user_changed(self.session, user_id)

    async def purge_expired(self, now: datetime) -> None:
        await self.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))

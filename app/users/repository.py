from sqlalchemy import select, update

from app.core.db import note_user_changed
from app.core.repository import Repository
from app.models import User


class UserRepository(Repository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        """`email` in its canonical form (app/users/emails.py), as stored."""
        return await self.session.scalar(select(User).where(User.email == email))

    async def bump_jobs_version(self, user_id: int) -> None:
        await self.session.execute(
            update(User)
            .where(User.user_id == user_id)
            .values(jobs_version=User.jobs_version + 1)
            .execution_options(synchronize_session=False)
        )
        note_user_changed(self.session, user_id)

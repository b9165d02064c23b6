from sqlalchemy import select, update

from app.core.repository import Repository
from app.models import User
from app.users.changes import note_user_changed


class UserRepository(Repository[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email.lower()))

    async def bump_jobs_version(self, user_id: int) -> None:
        await self.session.execute(
            update(User)
            .where(User.user_id == user_id)
            .values(jobs_version=User.jobs_version + 1)
            .execution_options(synchronize_session=False)
        )
        note_user_changed(self.session, user_id)

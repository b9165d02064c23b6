"""Which users a session changed in what their tokens, their answers' ETags or their events
stream depend on: their row (token version, activity), their revoked tokens or their jobs. Read
when the session ends (Database.after_session): app/auth/revalidation_cache.py forgets them,
app/jobs/events.py wakes their event streams."""

from itertools import chain

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from app.models import Job, RevokedToken, User

_CHANGED_USERS = "changed_users"  # session.info key


def note_user_changed(session: AsyncSession | Session, user_id: int) -> None:
    """For changes the ORM does not see (bulk UPDATE, INSERT ... ON CONFLICT)."""
    session.info.setdefault(_CHANGED_USERS, set()).add(user_id)


def changed_users(session: AsyncSession) -> set[int]:
    changed: set[int] = session.info.get(_CHANGED_USERS, set())
    return changed


@event.listens_for(Session, "after_flush")
def _note_changed_users(session: Session, _flush: UOWTransaction) -> None:
    """Changes made through the ORM: a user's row, new revocations and new jobs."""
    for instance in chain(session.dirty, session.deleted):
        if isinstance(instance, User):
            note_user_changed(session, instance.user_id)
    for instance in session.new:
        if isinstance(instance, RevokedToken | Job):
            note_user_changed(session, instance.user_id)

"""stored emails in their canonical form (app/users/emails.py): NFKC, case-folded local part,
IDNA domain

Earlier versions stored an address lowercased, after email-validator's NFC: `Straße@x` was kept
as `straße@x`, a full-width address as itself. Logins now look addresses up in canonical form,
so a stored one that differs is rewritten. Where two accounts share one canonical form (a
look-alike registered beside the original), the one already canonical keeps it and the other is
left as it was and named in a warning: it no longer matches any login, and an operator decides
which account the person keeps. Downgrade keeps the canonical forms (the spellings they replaced
are not recorded; every canonical form is a valid address).

Revision ID: 3e8b1f6c2a90
Revises: 7c3f9e1b5a20
Create Date: 2026-12-03 08:00:00.000000+00:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The rule itself, not a copy: a migration that normalized differently from the running code
# would leave exactly the mismatch it is here to remove.
from app.users.emails import normalize_email

revision: str = "3e8b1f6c2a90"
down_revision: str | Sequence[str] | None = "7c3f9e1b5a20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT user_id, email FROM users ORDER BY user_id")).all()
    taken = {email for _, email in rows}
    left_as_they_were: list[int] = []
    for user_id, email in rows:
        try:
            canonical = normalize_email(email)
        except ValueError:
            left_as_they_were.append(user_id)
            continue
        if canonical == email:
            continue
        if canonical in taken:
            left_as_they_were.append(user_id)
            continue
        connection.execute(
            sa.text("UPDATE users SET email = :email WHERE user_id = :user_id"),
            {"email": canonical, "user_id": user_id},
        )
        taken.discard(email)
        taken.add(canonical)
    if left_as_they_were:
        logger.warning(
            "emails of users %s left as they were: their canonical form is another account's "
            "(or they are not valid addresses); these accounts cannot log in until resolved",
            left_as_they_were,
        )


def downgrade() -> None:
    pass

"""the list's index carries the listed columns (PostgreSQL), so a page is an index-only scan

A user's jobs are spread across the table; reading a page of 50 took one heap page per job.
Built CONCURRENTLY under a new name and swapped, so that writes to jobs are not blocked while it
builds on a large table. SQLite has no INCLUDE: its index stays as it is.

Revision ID: 7c3f9e1b5a20
Revises: 4ad51c240924
Create Date: 2026-11-24 06:30:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7c3f9e1b5a20"
down_revision: str | Sequence[str] | None = "4ad51c240924"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_jobs_user_id_created_at_job_id"
KEY = "(user_id, created_at, job_id)"


def _replace(include: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}_new")  # left by a failed attempt
        op.execute(f"CREATE INDEX CONCURRENTLY {NAME}_new ON jobs {KEY} {include}")
        op.execute(f"DROP INDEX CONCURRENTLY {NAME}")
        op.execute(f"ALTER INDEX {NAME}_new RENAME TO {NAME}")


def upgrade() -> None:
    _replace("INCLUDE (status, job_name, job_type, updated_at)")


def downgrade() -> None:
    _replace("")

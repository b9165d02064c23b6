"""users.jobs_version: bumped on every change to a user's jobs, the source of their ETags

Revision ID: 9a3e6b2c4d17
Revises: 5d1c0a7e2f41
Create Date: 2026-11-24 03:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a3e6b2c4d17"
down_revision: str | Sequence[str] | None = "5d1c0a7e2f41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("jobs_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("jobs_version")

"""the queue's fetch plans without bitmap scans, whatever the statistics say

procrastinate_fetch_job_v2 with bitmap scans turned off for it alone; why, and what it changes:
docs/jobs.md, "The fetch's plan". procrastinate's code is unchanged.

Revision ID: a6c20f602c74
Revises: b7d2e5a1c308
Create Date: 2026-12-03 15:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a6c20f602c74"
down_revision: str | Sequence[str] | None = "b7d2e5a1c308"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FETCH_FUNCTION = "procrastinate_fetch_job_v2(character varying[], bigint)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER FUNCTION {FETCH_FUNCTION} SET enable_bitmapscan = off")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER FUNCTION {FETCH_FUNCTION} RESET enable_bitmapscan")

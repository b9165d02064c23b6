"""the queue's fetch reads its index in order (no bitmap scan), so finished work costs it nothing

procrastinate_fetch_job_v2 takes the oldest waiting piece of work through the partial index on
waiting work (status 'todo'). Every piece of work leaves that index when a worker takes it, but
its entry stays until VACUUM. Planned as a bitmap scan, which PostgreSQL picks for the few rows
it expects there, each fetch visits every such entry and its heap page, and sorts: the fetch
grows costlier with each job run since the last VACUUM, and a queue that runs hundreds of jobs
a second gets no VACUUM for a minute at least. An index scan reads the index in the order the
fetch wants, stops at the first piece of work it can lock, and marks the entries of finished
work dead as it passes them, so later fetches skip them. The setting applies to that function
alone; procrastinate's code is unchanged. A later procrastinate with another fetch function
needs the setting moved to it (tests/jobs/test_queue_fetch.py checks the name).

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

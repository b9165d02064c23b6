"""jobs.changed_in: which transaction last wrote each job, for the events stream and its replay;
users.jobs_version dropped (its per-user row lock serialized every change to a user's jobs)

Every insert or update of a job stamps `changed_in`, whatever wrote it (API, worker, psql):

- PostgreSQL: the writing transaction's id (pg_current_xact_id()). "What changed since" is then
  exact against a snapshot (pg_current_snapshot()): a change is new to a reader exactly when
  its transaction was not visible in the reader's last snapshot, whatever order transactions
  committed in. The same trigger sends `NOTIFY jobs_feed, '<user_id>'`, delivered on commit.
- SQLite: a counter in job_change_counter. SQLite runs one writing transaction at a time, so
  counter order is commit order.

Revision ID: b7d2e5a1c308
Revises: e41b7c9d2a63
Create Date: 2026-12-03 12:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d2e5a1c308"
down_revision: str | Sequence[str] | None = "e41b7c9d2a63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_jobs_user_id_changed_in"

PG_FUNCTION = """
CREATE FUNCTION jobs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_in := pg_current_xact_id()::text::bigint;
    PERFORM pg_notify('jobs_feed', NEW.user_id::text);
    IF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id THEN
        PERFORM pg_notify('jobs_feed', OLD.user_id::text);
    END IF;
    RETURN NEW;
END
$$
"""
PG_TRIGGER = (
    "CREATE TRIGGER jobs_jobs_feed BEFORE INSERT OR UPDATE ON jobs "
    "FOR EACH ROW EXECUTE FUNCTION jobs_changed()"
)

# users_jobs_feed_update (migration 4ad51c240924) without jobs_version.
USERS_TRIGGER = """
CREATE TRIGGER users_jobs_feed_update AFTER UPDATE ON users
FOR EACH ROW WHEN ({condition})
EXECUTE FUNCTION notify_jobs_feed()
"""
USERS_CONDITION = (
    "OLD.token_version IS DISTINCT FROM NEW.token_version"
    " OR OLD.is_active IS DISTINCT FROM NEW.is_active"
    " OR OLD.user_id IS DISTINCT FROM NEW.user_id"
)

# Recursive triggers are off in SQLite, and the WHEN skips the trigger's own update anyway.
SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER jobs_changed_insert AFTER INSERT ON jobs
    BEGIN
        UPDATE job_change_counter SET last = last + 1;
        UPDATE jobs SET changed_in = (SELECT last FROM job_change_counter)
        WHERE job_id = NEW.job_id;
    END
    """,
    """
    CREATE TRIGGER jobs_changed_update AFTER UPDATE ON jobs
    WHEN NEW.changed_in = OLD.changed_in
    BEGIN
        UPDATE job_change_counter SET last = last + 1;
        UPDATE jobs SET changed_in = (SELECT last FROM job_change_counter)
        WHERE job_id = NEW.job_id;
    END
    """,
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "jobs",
        sa.Column("changed_in", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.create_index(INDEX, "jobs", ["user_id", "changed_in"])
    if postgresql:
        op.execute("UPDATE jobs SET changed_in = pg_current_xact_id()::text::bigint")
        op.execute(PG_FUNCTION)
        op.execute(PG_TRIGGER)
        op.execute("DROP TRIGGER users_jobs_feed_update ON users")
    else:
        op.create_table(
            "job_change_counter",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("last", sa.BigInteger(), nullable=False),
            sa.CheckConstraint("id = 1", name="single_row"),
        )
        op.execute("INSERT INTO job_change_counter (id, last) VALUES (1, 0)")
        op.execute("UPDATE jobs SET changed_in = 1")
        op.execute("UPDATE job_change_counter SET last = 1")
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
    # ALTER TABLE ... DROP COLUMN on both (SQLite since 3.35): a batch copy of `users` on
    # SQLite would drop the old table, and its jobs with it (ON DELETE CASCADE).
    op.drop_column("users", "jobs_version")
    if postgresql:
        op.execute(USERS_TRIGGER.format(condition=USERS_CONDITION))


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("DROP TRIGGER users_jobs_feed_update ON users")
    op.add_column(
        "users",
        sa.Column("jobs_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    if postgresql:
        op.execute(
            USERS_TRIGGER.format(
                condition="OLD.jobs_version IS DISTINCT FROM NEW.jobs_version OR " + USERS_CONDITION
            )
        )
        op.execute("DROP TRIGGER jobs_jobs_feed ON jobs")
        op.execute("DROP FUNCTION jobs_changed()")
    else:
        op.execute("DROP TRIGGER jobs_changed_insert")
        op.execute("DROP TRIGGER jobs_changed_update")
        op.drop_table("job_change_counter")
    op.drop_index(INDEX, "jobs")
    op.drop_column("jobs", "changed_in")

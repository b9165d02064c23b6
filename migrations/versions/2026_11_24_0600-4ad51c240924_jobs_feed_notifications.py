"""NOTIFY jobs_feed with a user's id whenever what their dashboard poll depends on changes

A revalidation (If-None-Match) depends on the user's row (jobs_version, token_version,
is_active) and on their revoked tokens. Each API process LISTENs on `jobs_feed` and forgets
what it remembered about that user (app/auth/revalidation_cache.py). The payload is the user's id,
or "*" when every user may have changed (TRUNCATE). PostgreSQL only: SQLite has no NOTIFY, and
the API remembers nothing there.

Revision ID: 4ad51c240924
Revises: 9a3e6b2c4d17
Create Date: 2026-11-24 06:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "4ad51c240924"
down_revision: str | Sequence[str] | None = "9a3e6b2c4d17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION notify_jobs_feed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify('jobs_feed', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('jobs_feed', OLD.user_id::text);
    ELSE
        PERFORM pg_notify('jobs_feed', NEW.user_id::text);
        IF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id THEN
            PERFORM pg_notify('jobs_feed', OLD.user_id::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""

# name, table, events, and for which rows
TRIGGERS = (
    (
        "users_jobs_feed_update",
        "users",
        "AFTER UPDATE",
        """FOR EACH ROW WHEN (OLD.jobs_version IS DISTINCT FROM NEW.jobs_version
                              OR OLD.token_version IS DISTINCT FROM NEW.token_version
                              OR OLD.is_active IS DISTINCT FROM NEW.is_active
                              OR OLD.user_id IS DISTINCT FROM NEW.user_id)""",
    ),
    ("users_jobs_feed_delete", "users", "AFTER DELETE", "FOR EACH ROW"),
    ("users_jobs_feed_truncate", "users", "AFTER TRUNCATE", "FOR EACH STATEMENT"),
    ("revoked_tokens_jobs_feed", "revoked_tokens", "AFTER INSERT OR UPDATE", "FOR EACH ROW"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    for name, table, events, rows in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} {events} ON {table} {rows} EXECUTE FUNCTION notify_jobs_feed()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _events, _rows in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION notify_jobs_feed()")

"""jobs run: the run's fields on jobs, and the task engine's queue (procrastinate, PostgreSQL)

The queue is procrastinate's own schema, as the installed procrastinate ships it: tables, types,
functions and triggers named procrastinate_*. A later procrastinate release that changes it
comes with migration files of its own (procrastinate/sql/migrations); apply them in a new
revision here, so `alembic upgrade head` stays the one way to set a database up. SQLite (the
embedded default) keeps its queue in memory and gets no tables.

Revision ID: e41b7c9d2a63
Revises: 3e8b1f6c2a90
Create Date: 2026-12-03 08:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.util import await_only

revision: str = "e41b7c9d2a63"
down_revision: str | Sequence[str] | None = "3e8b1f6c2a90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
_TIMESTAMP = sa.DateTime(timezone=True)

# Everything procrastinate's schema creates, by kind; dropped by name on downgrade.
_DROP_ENGINE = """
DO $$
DECLARE name text;
BEGIN
    DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
        procrastinate_jobs, procrastinate_workers CASCADE;
    FOR name IN SELECT p.oid::regprocedure::text FROM pg_proc AS p
                JOIN pg_namespace AS n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
    LOOP
        EXECUTE 'DROP FUNCTION ' || name || ' CASCADE';
    END LOOP;
    FOR name IN SELECT t.typname FROM pg_type AS t
                JOIN pg_namespace AS n ON n.oid = t.typnamespace
                WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%'
                  AND t.typtype IN ('e', 'c')
    LOOP
        EXECUTE 'DROP TYPE ' || quote_ident(name) || ' CASCADE';
    END LOOP;
END $$;
"""


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column("progress", sa.SmallInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(sa.Column("progress_message", sa.String(200), nullable=True))
        batch.add_column(sa.Column("result", _JSON, nullable=True))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("started_at", _TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("finished_at", _TIMESTAMP, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # One script of many statements: asyncpg runs it as such only outside a prepared
        # statement, on the migration's own connection and transaction.
        driver = op.get_bind().connection.dbapi_connection.driver_connection  # type: ignore[union-attr]
        await_only(driver.execute(SchemaManager.get_schema()))
        # A cancel finds a job's running work by its queueing lock (procrastinate indexes it
        # for waiting work only).
        op.execute(
            "CREATE INDEX procrastinate_jobs_queueing_lock_doing "
            "ON procrastinate_jobs (queueing_lock) WHERE status = 'doing'"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_DROP_ENGINE)
    with op.batch_alter_table("jobs") as batch:
        for column in (
            "finished_at",
            "started_at",
            "error",
            "result",
            "progress_message",
            "progress",
            "attempts",
        ):
            batch.drop_column(column)

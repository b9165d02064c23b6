import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin, UTCDateTime


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


PROGRESS_MESSAGE_LENGTH = 200

# On SQLite, the table whose one row counts job writes for `changed_in` (migration b7d2e5a1c308);
# only the triggers use it, so no model maps it.
SQLITE_CHANGE_COUNTER = "job_change_counter"

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
JobId = BigInteger().with_variant(Integer(), "sqlite")


class Job(TimestampMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # "This user's jobs, newest first": the list, its keyset pages and the stats all
        # start from user_id and walk (created_at, job_id) backwards. On PostgreSQL it also
        # carries the listed columns, so a page is read from the index alone instead of one
        # heap page per job (a user's jobs are scattered across the table).
        Index(
            "ix_jobs_user_id_created_at_job_id",
            "user_id",
            "created_at",
            "job_id",
            postgresql_include=["status", "job_name", "job_type", "updated_at"],
        ),
        # "This user's jobs changed since": the events stream and its replay. Carrying the
        # status too, the totals by status may be read from either index alone.
        Index(
            "ix_jobs_user_id_changed_in",
            "user_id",
            "changed_in",
            postgresql_include=["status"],
        ),
    )

    job_id: Mapped[int] = mapped_column(JobId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False
    )
    job_name: Mapped[str] = mapped_column(String(255), nullable=False)
    job_type: Mapped[str] = mapped_column(String(50), nullable=False)
    status: Mapped[JobStatus] = mapped_column(
        SAEnum(
            JobStatus,
            name="job_status",
            native_enum=False,
            create_constraint=True,
            length=20,
            values_callable=lambda statuses: [status.value for status in statuses],
            validate_strings=True,
        ),
        default=JobStatus.PENDING,
        server_default=JobStatus.PENDING.value,
        nullable=False,
    )
    parameters: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
    )

    # The run, as the worker reports it (app/jobs/runner.py).
    attempts: Mapped[int] = mapped_column(
        Integer, default=0, server_default=text("0"), nullable=False
    )
    progress: Mapped[int] = mapped_column(
        SmallInteger, default=0, server_default=text("0"), nullable=False
    )
    progress_message: Mapped[str | None] = mapped_column(String(PROGRESS_MESSAGE_LENGTH))
    result: Mapped[Any | None] = mapped_column(
        JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
    )
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Which write last touched the job, stamped by a database trigger on every insert and
    # update (migration b7d2e5a1c308): a transaction id on PostgreSQL, a counter on SQLite.
    changed_in: Mapped[int] = mapped_column(BigInteger, server_default=text("0"), nullable=False)

"""Settings read once from the environment and `.env`, validated at startup."""

import logging
from functools import lru_cache
from typing import Annotated, Literal

from fastapi import Depends, Request
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger(__name__)

# Shared by every process that runs without a SECRET_KEY, so that two development workers accept
# each other's tokens. Production refuses it.
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-change-me-0123456789"
MIN_SECRET_KEY_LENGTH = 32

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Environment = "development"
    database_url: str = "sqlite+aiosqlite:///./jobs.db"
    secret_key: str = DEVELOPMENT_SECRET_KEY
    access_token_expire_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    cors_origins: Annotated[list[str], NoDecode] = ["http://localhost:3000"]
    # None means "decide from the environment": Secure everywhere but development over plain HTTP.
    cookie_secure: bool | None = None
    cookie_samesite: Literal["lax", "strict", "none"] = "lax"

    # Login throttling: this many failures for one email from one client within the window -> 429.
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # Password checks (logins, registrations) one client may ask for within the window, across
    # all emails: past it, 429 before any hashing.
    client_max_password_checks: int = Field(default=30, ge=1)
    client_password_check_window_seconds: int = Field(default=60, ge=1)
    # ... and may have this many in progress at once (per process); a few more wait for a turn
    # (up to PASSWORD_HASH_MAX_WAIT_SECONDS), the rest -> 429.
    client_max_concurrent_password_checks: int = Field(default=4, ge=1)
    # Shared counters for several instances; in-process memory when unset.
    redis_url: str | None = None
    # argon2 hashes computed at once in one process (unset: one per CPU), and how long a request
    # may wait for a turn before it is answered 503 with Retry-After.
    password_hash_concurrency: int | None = Field(default=None, ge=1)
    password_hash_max_wait_seconds: float = Field(default=2, ge=0)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Connect and pool-wait timeout, and the longest a statement may run, in seconds.
    # Together they bound how long a request waits on a database that vanished (~8 s).
    database_timeout_seconds: float = Field(default=3, gt=0)
    database_statement_timeout_seconds: float = Field(default=5, gt=0)
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    # Behind PgBouncer in transaction mode: no server-side prepared statement may outlive a
    # transaction, so asyncpg's statement caches are turned off.
    database_pgbouncer: bool = False
    # Users whose tokens each process checks from memory on reads, kept in step by
    # LISTEN/NOTIFY (app/auth/revalidation_cache.py); 0 asks the database on every poll.
    revalidation_cache_users: int = Field(default=10_000, ge=0)
    # Open `GET /api/users/jobs/events` streams one user may have in each process; past it,
    # 429 (app/jobs/events.py).
    event_streams_per_user: int = Field(default=10, ge=1)

    log_format: Literal["json", "console"] | None = None  # json in production, else console
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    metrics_enabled: bool = False
    # When set, /metrics wants `Authorization: Bearer <METRICS_TOKEN>`.
    metrics_token: str | None = None

    # `python -m app serve`
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    web_concurrency: int = Field(default=1, ge=1)
    # Proxies whose X-Forwarded-For / -Proto are believed (comma-separated addresses or "*").
    forwarded_allow_ips: str = "127.0.0.1"
    graceful_shutdown_seconds: int = Field(default=30, ge=1)
    # A request must arrive in full (headers and body) within this long, or its connection is
    # closed: half-sent requests cannot pile up (app/core/serving.py).
    request_read_timeout_seconds: float = Field(default=15, gt=0)

    # `python -m app worker` (docs/jobs.md)
    # Jobs one worker process runs at once.
    worker_concurrency: int = Field(default=10, ge=1, le=1000)
    # On SIGTERM, jobs in flight get this long to finish; the rest go back to the queue.
    worker_shutdown_grace_seconds: float = Field(default=20, ge=0)
    # A worker's heartbeat; work held by a worker silent for worker_stalled_seconds is taken
    # back, checked every worker_recovery_interval_seconds by one of the workers.
    worker_heartbeat_seconds: float = Field(default=2, gt=0)
    worker_stalled_seconds: float = Field(default=10, gt=0)
    worker_recovery_interval_seconds: int = Field(default=5, ge=1, le=59)
    # The engine's record of finished work is deleted after this long (hourly).
    worker_keep_finished_hours: int = Field(default=24, ge=1)
    # Serves the worker's Prometheus metrics on this port when set.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # On SQLite, the API process runs jobs itself (app/jobs/embedded.py).
    embedded_worker: bool = True

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        # A wildcard with credentials would let any site read a user's jobs with their cookie.
        if "*" in origins:
            raise ValueError("CORS_ORIGINS must list origins explicitly; '*' is not allowed")
        return origins

    @model_validator(mode="after")
    def _production_is_safe(self) -> "Settings":
        if self.cookie_secure is None:
            self.cookie_secure = self.environment != "development"
        if self.environment == "production":
            if (
                self.secret_key == DEVELOPMENT_SECRET_KEY
                or len(self.secret_key) < MIN_SECRET_KEY_LENGTH
            ):
                raise ValueError(
                    f"SECRET_KEY must be set to a secret of at least {MIN_SECRET_KEY_LENGTH} "
                    "characters in production"
                )
            if not self.cookie_secure:
                raise ValueError("COOKIE_SECURE=false is not allowed in production")
            if self.metrics_enabled and not self.metrics_token:
                raise ValueError("METRICS_ENABLED in production requires METRICS_TOKEN")
        if self.worker_stalled_seconds <= 2 * self.worker_heartbeat_seconds:
            raise ValueError("WORKER_STALLED_SECONDS must exceed twice WORKER_HEARTBEAT_SECONDS")
        if self.cookie_samesite == "none" and not self.cookie_secure:
            raise ValueError("COOKIE_SAMESITE=none requires COOKIE_SECURE=true")
        return self

    @property
    def access_token_lifetime_seconds(self) -> int:
        return self.access_token_expire_minutes * 60

    @property
    def resolved_log_format(self) -> str:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "console"

    @property
    def uses_development_key(self) -> bool:
        return self.secret_key == DEVELOPMENT_SECRET_KEY


@lru_cache
def get_settings() -> Settings:
    return Settings()


def warn_about_unsafe_defaults(settings: Settings) -> None:
    if settings.uses_development_key:
        logger.warning(
            "SECRET_KEY is not set: using the built-in development key. Anyone can forge tokens "
            "for this instance. Set SECRET_KEY before exposing it."
        )


async def _settings_of_app(request: Request) -> Settings:
    settings: Settings = request.app.state.context.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings_of_app)]

"""Alembic environment: async engine, URL from DATABASE_URL via the app's Settings."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from app.core.config import Settings
from app.core.db import create_engine
from app.jobs.engine import ENGINE_TABLE_PREFIX
from app.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    # Tests and tools may pass a URL explicitly; otherwise DATABASE_URL decides.
    url = config.attributes.get("database_url") or Settings().database_url
    return str(url)


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """The task engine's tables belong to its own schema script, not to the models."""
    return not (type_ == "table" and (name or "").startswith(ENGINE_TABLE_PREFIX))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())

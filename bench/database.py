"""The database a benchmark script runs on: where it is (its --database, --host, --port and
--user, defaulting as bench/run.sh passes them) and how each run starts from a new one."""

import argparse
import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def add_database_arguments(parser: argparse.ArgumentParser, default_name: str) -> None:
    parser.add_argument("--database", default=default_name)
    parser.add_argument("--host", default=os.environ.get("BENCH_PGHOST", "127.0.0.1"))
    parser.add_argument("--port", default=os.environ.get("BENCH_PGPORT", "5432"))
    parser.add_argument("--user", default=os.environ.get("BENCH_PGUSER", "postgres"))


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    name: str
    host: str
    port: str
    user: str

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "BenchDatabase":
        return cls(args.database, args.host, args.port, args.user)

    @property
    def dsn(self) -> str:
        """For asyncpg and psycopg."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"

    @property
    def url(self) -> str:
        """The app's DATABASE_URL for it."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{self.name}"

    async def recreate(self) -> None:
        """Dropped if it exists, created, and migrated (`alembic upgrade head`)."""
        admin = await asyncpg.connect(f"postgresql://{self.user}@{self.host}:{self.port}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["database_url"] = self.url
        config.attributes["configure_logger"] = False
        await asyncio.to_thread(command.upgrade, config, "head")

"""`python -m app create-user --email E --password P [--full-name N] [--admin]`
`python -m app serve`: the production server (HOST, PORT, WEB_CONCURRENCY, FORWARDED_ALLOW_IPS).
`python -m app worker`: runs jobs (WORKER_CONCURRENCY and the other WORKER_* settings)."""

import argparse
import asyncio
import signal
import sys

import uvicorn
from pydantic import BaseModel, ValidationError

from app.core.config import get_settings
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import AppError
from app.core.logs import configure_logging
from app.core.serving import DeadlineHttpProtocol
from app.users.schemas import Email, FullName, NewPassword
from app.users.service import UserService


class NewUser(BaseModel):
    email: Email
    password: NewPassword
    full_name: FullName | None = None
    admin: bool = False


async def _create_user(new_user: NewUser) -> int:
    engine = create_engine(get_settings().database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            user = await UserService(session).create_user(
                new_user.email, new_user.password, new_user.full_name, is_admin=new_user.admin
            )
            return user.user_id
    finally:
        await engine.dispose()


def serve() -> None:
    settings = get_settings()
    # The supervisor's own lines (start-up, worker restarts) in the same format as the workers'.
    configure_logging(settings)
    # uvicorn re-raises SIGTERM at the default disposition once it has shut down gracefully,
    # so the process would end as "killed by SIGTERM" (143). A handler of our own makes a
    # clean shutdown exit 0, as orchestrators expect.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.web_concurrency,
        # X-Forwarded-For/-Proto are believed only from these proxies, so throttling and the
        # CSRF check see the real client and scheme.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # On SIGTERM: stop accepting, let requests in flight finish (up to this long), exit.
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        access_log=False,  # the app writes one structured line per request
        log_config=None,  # the app configures logging
        server_header=False,
        # uvicorn's HTTP/1.1 protocol, with a deadline for each request to arrive in full.
        http=DeadlineHttpProtocol,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a user (an admin with --admin)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--full-name")
    create.add_argument("--admin", action="store_true", help="may move any job's status")
    commands.add_parser("serve", help="serve the API with uvicorn, configured from the environment")
    commands.add_parser("worker", help="run jobs from the queue (PostgreSQL)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve()
        return 0
    if args.command == "worker":
        from app import worker

        worker.main(get_settings())
        return 0

    try:
        new_user = NewUser(
            email=args.email, password=args.password, full_name=args.full_name, admin=args.admin
        )
        user_id = asyncio.run(_create_user(new_user))
    except ValidationError as exc:
        for error in exc.errors():
            print(f"error: {error['loc'][0]}: {error['msg']}", file=sys.stderr)
        return 2
    except AppError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    role = "admin" if new_user.admin else "user"
    print(f"created {role} {new_user.email} (user_id {user_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

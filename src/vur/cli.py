"""The `vur` command line: serve, worker, db upgrade/downgrade/current, users create."""

from __future__ import annotations

import argparse
import getpass
import signal
import sys

from vur.settings import get_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from vur.core.migrations import DatabaseNotMigrated, ensure_up_to_date, upgrade

    settings = get_settings()
    if args.migrate:
        # One process for both: `make run` reaches a healthy server sooner than with
        # a separate `vur db upgrade` paying the imports again.
        upgrade(settings.resolved_database_url)
    try:
        ensure_up_to_date(settings.resolved_database_url)
    except DatabaseNotMigrated as exc:
        print(f"vur: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        "vur.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        reload=args.reload,
        workers=args.workers,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from vur.core.db import get_database
    from vur.core.events import bus
    from vur.core.logging import configure_logging
    from vur.core.migrations import DatabaseNotMigrated, ensure_up_to_date
    from vur.core.outbox import OutboxWriter
    from vur.core.redis_events import RedisPublisher
    from vur.jobs.runner import Worker

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        ensure_up_to_date(settings.resolved_database_url)
    except DatabaseNotMigrated as exc:
        print(f"vur: {exc}", file=sys.stderr)
        return 2
    # This process has no WebSocket clients: its events go to Redis when configured, else
    # to the outbox; either way every API process relays them to its own subscribers.
    bus.forward_to(RedisPublisher(settings.redis_url) if settings.redis_url else OutboxWriter(get_database(settings.resolved_database_url)))
    worker = Worker(settings, processes=args.processes)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop(timeout=0))
    try:
        worker.run()
    except KeyboardInterrupt:
        pass
    return 0


def _db(args: argparse.Namespace) -> int:
    from vur.core import migrations

    url = get_settings().resolved_database_url
    if args.action == "upgrade":
        migrations.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        migrations.downgrade(url, args.revision or "base")
    else:
        print(f"current: {migrations.current_revision(url)}  head: {migrations.head_revision()}")
    return 0


def _users_create(args: argparse.Namespace) -> int:
    from vur.core.db import get_database
    from vur.core.errors import VurError
    from vur.identity import service
    from vur.identity.schemas import RegisterRequest

    password = args.password or getpass.getpass("Password: ")
    try:
        body = RegisterRequest(email=args.email, password=password, name=args.name or args.email.split("@")[0])
    except ValueError as exc:
        print(f"vur: {exc}", file=sys.stderr)
        return 2
    database = get_database(get_settings().resolved_database_url)
    try:
        with database.session() as session:
            user = service.create_user(session, email=body.email, password=body.password, name=body.name, is_superuser=args.admin)
            print(f"created {user.email} (id {user.id}, workspace {user.workspace_id}{', platform admin' if args.admin else ''})")
    except VurError as exc:
        print(f"vur: {exc.message}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vur", description="VUR machine-learning platform")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    serve.add_argument(
        "--workers", type=int, default=1, help="API processes (default 1); with more than one, set VUR_REDIS_URL so live updates reach every WebSocket client"
    )
    serve.add_argument("--migrate", action="store_true", help="apply database migrations first (the embedded default does)")
    serve.set_defaults(func=_serve)

    worker = commands.add_parser("worker", help="run background jobs in this process")
    worker.add_argument("--processes", type=int, help="jobs run at once (default VUR_JOB_PROCESSES)")
    worker.set_defaults(func=_worker)

    db = commands.add_parser("db", help="database migrations")
    db.add_argument("action", choices=["upgrade", "downgrade", "current"])
    db.add_argument("revision", nargs="?")
    db.set_defaults(func=_db)

    users = commands.add_parser("users", help="manage accounts")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    create = users_commands.add_parser("create", help="create an account (and its workspace)")
    create.add_argument("--email", required=True)
    create.add_argument("--name")
    create.add_argument("--password", help="prompted for when omitted")
    create.add_argument("--admin", action="store_true", help="platform administrator")
    create.set_defaults(func=_users_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

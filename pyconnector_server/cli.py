"""``pyconnector`` command: run the platform and manage its keys.

    pyconnector serve [--host H] [--port P] [--data-dir D] [--db URL] …
    pyconnector worker --executor celery://… [--concurrency N] [--task-dir D]  # runs tasks
    pyconnector apikey create --data-dir D --tenant T [--role admin|app]  # the key, only that
    pyconnector apikey list --data-dir D --tenant T       # id, prefix, role, created; no keys
    pyconnector apikey revoke --data-dir D --tenant T ID-OR-PREFIX [--force]
    pyconnector jwtkey create --data-dir D --tenant T     # switches T to JWT mode
    pyconnector dlsuser create --data-dir D --tenant T --user U   # prints U's DLS key, only that
    pyconnector dlsquota set --data-dir D --tenant T --bytes N    # data lake quota (0: none)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .services import Service, registered
from .settings import SETTINGS, Settings, SettingsError


def add_settings(parser: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    """Give ``parser`` an option per setting (``only``: just those), from the one table."""
    for s in SETTINGS:
        if only is not None and s.name not in only:
            continue
        # Kept as strings: Settings.load converts and checks them, and its error names
        # the option and what it accepts in one line (argparse would print its usage).
        parser.add_argument("--" + s.name.replace("_", "-"), dest=s.name,
                            default=None, help=f"{s.help} (default: {s.default!r}; "
                            f"env PYCONNECTOR_{s.name.upper()})")


def build_parser(services: Sequence[Service] | None = None) -> argparse.ArgumentParser:
    """The command line: the core's commands, then each service's."""
    services = registered() if services is None else services
    parser = argparse.ArgumentParser(prog="pyconnector", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the platform until stopped")
    add_settings(serve)
    worker = sub.add_parser("worker", help="run tasks for a platform whose --executor is "
                            "celery://… (a Celery worker; on this or another machine)")
    add_settings(worker, only=("executor", "task_dir", "log_level"))
    worker.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                        help="tasks this worker runs at once (default: the number of CPUs)")
    _add_apikey(sub)
    p = sub.add_parser("jwtkey", help="manage JWT symmetric keys (JWT mode)")
    create = p.add_subparsers(dest="action", required=True).add_parser(
        "create", help="print a new JWT symmetric key for a tenant, switching it to JWT mode "
        "(the old JWT key stops working)")
    create.add_argument("--tenant", required=True, help="tenant name (created if new)")
    add_settings(create, only=("data_dir", "db"))
    for service in services:
        if service.add_commands is not None:
            service.add_commands(sub)
    return parser


def _add_apikey(sub: Any) -> None:
    p = sub.add_parser("apikey", help="manage API keys (x-api-key)")
    action = p.add_subparsers(dest="action", required=True)
    create = action.add_parser(
        "create", help="print a new API key for a tenant (creating the tenant), only that")
    create.add_argument("--tenant", required=True, help="tenant name (created if new)")
    create.add_argument(
        "--role", choices=("admin", "app"), default=None,
        help="admin: the tenant's administrator (also manages Data Lake users and quota); "
        "app: for an application or a DLS user. Default: admin if the tenant has no admin "
        "key yet (a new tenant), else app")
    listing = action.add_parser(
        "list", help="one line per key of a tenant: id, prefix, role, created (UTC); "
        "never the key")
    listing.add_argument("--tenant", required=True, help="tenant name")
    revoke = action.add_parser(
        "revoke", help="delete a key of a tenant; requests with it get 401 at once")
    revoke.add_argument("--tenant", required=True, help="tenant name")
    revoke.add_argument("ref", metavar="ID-OR-PREFIX",
                        help="the key's id or the start of its prefix (4+ characters), as "
                        "`apikey list` shows them")
    revoke.add_argument("--force", action="store_true",
                        help="revoke even the tenant's last admin key")
    for parser in (create, listing, revoke):
        add_settings(parser, only=("data_dir", "db"))


def _apikey(db: Any, action: str, tenant: str, args: dict[str, Any]) -> None:
    """``apikey create|list|revoke``: the answer on stdout, notes on stderr."""
    from datetime import datetime, timezone

    from .auth import issue_api_key, list_api_keys, revoke_api_key

    def when(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    if action == "create":
        made = issue_api_key(db, tenant, args.get("role"))
        print(made.key)
        print(f"{'created tenant' if made.tenant_created else 'tenant'} {tenant!r}: new "
              f"{made.role} key {made.key[:8]}", file=sys.stderr)
    elif action == "list":
        for k in list_api_keys(db, tenant):
            print(f"{k.id}\t{k.prefix or '-'}\t{k.role}\t{when(k.created_ms)}")
    else:
        k = revoke_api_key(db, tenant, args["ref"], force=args.get("force", False))
        print(f"revoked key {k.id} ({k.prefix or 'no prefix'}, {k.role}) of tenant {tenant!r}")


class CommandError(Exception):
    """A failure the command reports as one line on stderr, with exit status 2."""


def _data_dir(path: Path) -> None:
    """Make the data directory and check it takes files, or raise :class:`CommandError`."""
    import tempfile

    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(0, "it is a file, not a directory")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise CommandError(f"the data directory {str(path)!r} is not writable "
                           f"({exc.strerror or exc}); pass --data-dir with a directory you "
                           "can write to") from exc


def _open_db(settings: Settings) -> Any:
    import sqlalchemy as sa

    from .db import Database, connect_error

    _data_dir(settings.data_path)
    db = Database(settings.database_url)
    try:
        db.migrate()
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        db.close()
        raise connect_error(settings.database_url, exc) from exc
    return db


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or :class:`CommandError` naming what is wrong."""
    import errno

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(f"port {port} on {host} is in use (another pyconnector "
                               "serve?); pick another with --port, or --port 0 for any "
                               "free one") from exc
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _shared_blobs(settings: Settings) -> None:
    """On PostgreSQL, refuse the implicit per-process blob store (:class:`CommandError`).

    A PostgreSQL database is there to be shared: a second process on it would list files
    whose bytes sit in the first one's data directory, answering 404 for them. A blob store
    given by name (``--blobs file:///shared/path`` or ``s3://…``) says where the bytes live
    for every process, even when that is a lone process's own directory."""
    if settings.database_url.startswith("postgresql") and not settings.blobs:
        raise CommandError(
            "--db is PostgreSQL, which several processes may share, but data lake files "
            "would stay in this process's --data-dir; give a store they all reach with "
            "--blobs file:///shared/path or --blobs s3://bucket/prefix (a lone process: "
            f"--blobs file://{settings.data_path / 'blobs'})")


def serve(settings: Settings, services: Sequence[Service] | None = None) -> None:
    """Run the platform serving ``services`` (default: the registered ones) until stopped."""
    import uvicorn

    from .app import create_app
    from .auth import create_api_key, has_tenants
    from .httpserver import ConnectionLimits, protocol_class

    _shared_blobs(settings)
    # The port first: a first start that cannot listen must not use up the printed key.
    sock = _listen(settings.host, settings.port)
    try:
        db = _open_db(settings)
    except BaseException:
        sock.close()
        raise
    try:
        if not has_tenants(db):
            key = create_api_key(db, "default")
            print(f"First start: created tenant 'default' with API key {key}", flush=True)
    finally:
        db.close()
    port = sock.getsockname()[1]
    settings = dataclasses.replace(settings, port=port)  # --port 0: the one picked
    print(f"pyconnector platform listening on http://{settings.host}:{port}", flush=True)
    # Connection limits (head size, head/body/idle timeouts, connection cap) live in our
    # subclass of uvicorn's httptools protocol: uvicorn has no head limit nor read timeouts.
    config = uvicorn.Config(create_app(settings, services), log_level=settings.log_level,
                            access_log=settings.log_level == "debug",
                            http=protocol_class(ConnectionLimits.from_settings(settings)),
                            timeout_keep_alive=settings.keep_alive_seconds)
    uvicorn.Server(config).run(sockets=[sock])


def worker(settings: Settings, concurrency: int) -> int:
    """Run a task worker until stopped (``pyconnector worker``)."""
    from .backends.executor import celery, worker

    if concurrency < 1:
        print("pyconnector worker: error: --concurrency must be at least 1", file=sys.stderr)
        return 2
    if settings.task_dir:
        worker.WORK_ROOT = Path(settings.task_dir).expanduser().resolve()
    try:
        celery.run_worker(settings.executor, concurrency, settings.log_level)
    except ValueError as exc:
        print(f"pyconnector worker: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None,
         services: Sequence[Service] | None = None) -> int:
    """Run the command ``argv`` names; answer its exit status."""
    services = registered() if services is None else services
    args = vars(build_parser(services).parse_args(argv))
    command = args.pop("command")
    action = args.pop("action", None)
    tenant = args.pop("tenant", None)
    concurrency = args.pop("concurrency", None)
    try:
        settings = Settings.load(args)
    except SettingsError as exc:
        print(f"pyconnector {command}: error: {exc}", file=sys.stderr)
        return 2
    from .db import DatabaseError

    try:
        return _run(command, action, tenant, concurrency, settings, services, args)
    except (CommandError, DatabaseError) as exc:
        print(f"pyconnector {command}: error: {exc}", file=sys.stderr)
        return 2


def _run(command: str, action: Any, tenant: Any, concurrency: Any, settings: Settings,
         services: Sequence[Service], args: dict[str, Any]) -> int:
    if command == "serve":
        serve(settings, services)
        return 0
    if command == "worker":
        return worker(settings, concurrency)
    from .auth import KeyAdminError, create_jwt_key

    db = _open_db(settings)
    try:
        for service in services:
            if command in service.commands and service.run_command is not None:
                return service.run_command(db, command, {**args, "action": action,
                                                         "tenant": tenant})
        if command == "apikey":
            _apikey(db, action, tenant, args)
        else:
            assert action == "create"
            print(create_jwt_key(db, tenant))
    except KeyAdminError as exc:
        print(f"pyconnector {command} {action}: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

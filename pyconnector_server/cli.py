"""``pyconnector`` command: run the platform and manage its keys.

    pyconnector serve [--host H] [--port P] [--data-dir D] [--db URL] …
    pyconnector apikey create --data-dir D --tenant T     # prints the key, only that
    pyconnector jwtkey create --data-dir D --tenant T     # switches T to JWT mode
    pyconnector dlsuser create --data-dir D --tenant T --user U   # prints U's DLS key, only that
    pyconnector dlsquota set --data-dir D --tenant T --bytes N    # data lake quota (0: none)
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from typing import Any

from .settings import SETTINGS, Settings


def _add_settings(parser: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    for s in SETTINGS:
        if only is not None and s.name not in only:
            continue
        parser.add_argument("--" + s.name.replace("_", "-"), dest=s.name, type=s.type,
                            default=None, help=f"{s.help} (default: {s.default!r}; "
                            f"env PYCONNECTOR_{s.name.upper()})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyconnector", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the platform until stopped")
    _add_settings(serve)
    for kind in ("apikey", "jwtkey"):
        what = "an API key" if kind == "apikey" else "a JWT symmetric key (JWT mode)"
        p = sub.add_parser(kind, help=f"manage {what}s")
        action = p.add_subparsers(dest="action", required=True)
        create = action.add_parser("create", help=f"print a new {what} for a tenant")
        create.add_argument("--tenant", required=True, help="tenant name (created if new)")
        _add_settings(create, only=("data_dir", "db"))
    p = sub.add_parser("dlsuser", help="manage Data Lake users")
    create = p.add_subparsers(dest="action", required=True).add_parser(
        "create", help="print a new DLS key (x-dls-key) for a user of a tenant, creating "
        "the user (and tenant) if new; an existing user's old key stops working")
    create.add_argument("--tenant", required=True, help="tenant name (created if new)")
    create.add_argument("--user", required=True, help="DLS user name")
    _add_settings(create, only=("data_dir", "db"))
    p = sub.add_parser("dlsquota", help="manage Data Lake storage quotas")
    quota = p.add_subparsers(dest="action", required=True).add_parser(
        "set", help="set a tenant's data lake quota in bytes (0: unlimited)")
    quota.add_argument("--tenant", required=True, help="tenant name (created if new)")
    quota.add_argument("--bytes", required=True, type=int, dest="quota_bytes")
    _add_settings(quota, only=("data_dir", "db"))
    return parser


def _open_db(settings: Settings) -> Any:
    from .db import Database

    settings.data_path.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    db.migrate()
    return db


def serve(settings: Settings) -> None:
    import uvicorn

    from .app import create_app
    from .auth import create_api_key, has_tenants
    from .httpserver import ConnectionLimits, protocol_class

    db = _open_db(settings)
    try:
        if not has_tenants(db):
            key = create_api_key(db, "default")
            print(f"First start: created tenant 'default' with API key {key}", flush=True)
    finally:
        db.close()
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    port = sock.getsockname()[1]
    print(f"pyconnector platform listening on http://{settings.host}:{port}", flush=True)
    # Connection limits (head size, head/body/idle timeouts, connection cap) live in our
    # subclass of uvicorn's httptools protocol: uvicorn has no head limit nor read timeouts.
    config = uvicorn.Config(create_app(settings), log_level=settings.log_level,
                            access_log=settings.log_level == "debug",
                            http=protocol_class(ConnectionLimits.from_settings(settings)),
                            timeout_keep_alive=settings.keep_alive_seconds)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    action = args.pop("action", None)
    tenant = args.pop("tenant", None)
    settings = Settings.load(args)
    if command == "serve":
        serve(settings)
        return 0
    from .auth import create_api_key, create_jwt_key

    db = _open_db(settings)
    try:
        if command in ("dlsuser", "dlsquota"):
            from .datalake.store import datalake_admin

            print(datalake_admin(db, command, tenant, args))
            return 0
        assert action == "create"
        make = create_api_key if command == "apikey" else create_jwt_key
        print(make(db, tenant))
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Data Lake Service as a platform service: routes, tables, blob store, sweeper and
its CLI commands (``dlsuser create``, ``dlsquota set``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from starlette.datastructures import State

from ..backends.blobs import open_blob_store
from ..db import Database
from ..services import Service
from ..sweeper import Sweeper
from . import resumable
from .routes import router
from .store import DatalakeStore, datalake_admin


@asynccontextmanager
async def open_datalake(state: State) -> AsyncIterator[None]:
    """Open the blob store, hang the DLS store on ``state.dls`` and run the sweeper.

    The blob store is the DLS's alone; the sweeper lives here because it needs both the
    DLS catalog and its blobs (it also clears the platform's ``<data dir>/tmp``).
    """
    settings = state.settings
    blobs = open_blob_store(settings.blobs, settings.data_path / "blobs",
                            settings.s3_endpoint_url)
    try:
        state.dls = DatalakeStore(state.db, blobs, settings.dls_quota_bytes)
        sweeper = Sweeper(state.db, blobs, [settings.data_path / "tmp"],
                          settings.sweep_grace_seconds, settings.sweep_interval_seconds,
                          [partial(resumable.sweep_sessions, settings.data_path)])
        sweeping = asyncio.create_task(sweeper.run())
        try:
            yield
        finally:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
    finally:
        blobs.close()


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``dlsuser create`` and ``dlsquota set``."""
    from ..cli import add_settings

    p = sub.add_parser("dlsuser", help="manage Data Lake users")
    create = p.add_subparsers(dest="action", required=True).add_parser(
        "create", help="print a new DLS key (x-dls-key) for a user of a tenant, creating "
        "the user (and tenant) if new; an existing user's old key stops working")
    create.add_argument("--tenant", required=True, help="tenant name (created if new)")
    create.add_argument("--user", required=True, help="DLS user name")
    add_settings(create, only=("data_dir", "db"))
    p = sub.add_parser("dlsquota", help="manage Data Lake storage quotas")
    quota = p.add_subparsers(dest="action", required=True).add_parser(
        "set", help="set a tenant's data lake quota in bytes (0: unlimited)")
    quota.add_argument("--tenant", required=True, help="tenant name (created if new)")
    quota.add_argument("--bytes", required=True, type=int, dest="quota_bytes")
    add_settings(quota, only=("data_dir", "db"))


def run_command(db: Database, command: str, args: dict[str, Any]) -> int:
    """Run ``dlsuser`` or ``dlsquota``: the answer on stdout."""
    print(datalake_admin(db, command, args["tenant"], args))
    return 0


SERVICE = Service(name="dls", routers=[router, resumable.router],
                  tables="pyconnector_server.datalake.tables", open=open_datalake,
                  commands=("dlsuser", "dlsquota"),
                  add_commands=add_commands, run_command=run_command)

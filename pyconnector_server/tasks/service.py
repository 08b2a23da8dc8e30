"""The Task Service as a platform service: its routes, tables, executor and scheduler."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter
from starlette.datastructures import State

from ..backends.blobs import open_blob_store
from ..backends.executor import open_executor, remote
from ..services import Service
from ..settings import Settings
from .owners import Heartbeat
from .routes import PREFIX, router
from .runner import Runner
from .scheduler import Scheduler
from .store import TaskStore


@asynccontextmanager
async def open_tasks(state: State) -> AsyncIterator[None]:
    """Open the executor (``--executor``), keep this process's owner row alive and mark
    the runs of stopped processes lost (see :mod:`.owners`), and run the scheduler."""
    settings = state.settings
    executor = open_executor(settings.executor, callback_url=worker_url(settings))
    # Deploys and ended runs go to the blob store only when it is one the operator
    # chose (--blobs), presumably shared: the default is in this data dir already.
    blobs = open_blob_store(settings.blobs, settings.data_path / "blobs",
                            settings.s3_endpoint_url) if settings.blobs else None
    runner = Runner(TaskStore(state.db), executor, settings, blobs=blobs)
    runner.open()  # a task dir inside the data dir stops the start, naming it
    # Tasks run as another account when the platform is root: the data dir is the
    # platform's alone (its database, blobs, keys), whatever umask made it.
    data = settings.data_path
    if data.is_dir() and data.stat().st_uid == os.geteuid():
        data.chmod(0o700)
    # SQLite is one process's: at start, the runs of every other owner are lost.
    heartbeat = Heartbeat(runner.store, runner.owner, settings.task_owner_timeout_seconds,
                          alone=state.db.dialect != "postgresql")
    try:
        await heartbeat.open()
        scheduler = Scheduler(runner, catch_up_ms=settings.task_catch_up_seconds * 1000)
        state.tasks = runner
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()
    finally:
        try:
            await runner.close()
        finally:
            await heartbeat.close()  # after its runs ended: it marks what is left lost
            if blobs is not None:
                blobs.close()


def worker_url(settings: Settings) -> str:
    """Where remote workers (the celery executor's) reach :data:`worker_routes`."""
    base = settings.public_url.rstrip("/")
    if not base:
        host = settings.host
        if host in ("0.0.0.0", "::", ""):  # a wildcard: this machine's loopback answers too
            host = "127.0.0.1"
        base = f"http://[{host}]:{settings.port}" if ":" in host else \
            f"http://{host}:{settings.port}"
    return base + WORKER_PREFIX


# The routes task workers call (see backends/executor/remote.py); not in the API document.
WORKER_PREFIX = PREFIX + "/worker"
worker_routes = APIRouter(prefix=WORKER_PREFIX)
worker_routes.include_router(remote.router)

SERVICE = Service(name="tasks", routers=[router, worker_routes],
                  tables="pyconnector_server.tasks.tables", open=open_tasks)

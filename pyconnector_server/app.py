"""The app factory: nothing is built at import time; one app per settings."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

import pyconnector

from . import apidocs, deps, errors, openapi
from .cancel import CancelOnDisconnect
from .db import Database
from .limits import BodyLimitMiddleware
from .services import Service, registered
from .settings import Settings

log = logging.getLogger("pyconnector.server")


def create_app(settings: Settings | None = None,
               services: Sequence[Service] | None = None) -> FastAPI:
    """Build the platform for ``settings`` serving ``services`` (default: the registered
    ones): the lifespan opens the database, then each service in turn."""
    settings = settings or Settings.load()
    services = registered() if services is None else list(services)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One exit stack: when a service fails to open, everything opened before it
        # (the database, earlier services) is closed again, in reverse order.
        async with contextlib.AsyncExitStack() as opened:
            settings.data_path.mkdir(parents=True, exist_ok=True)
            db = Database(settings.database_url, settings.statement_timeout_seconds)
            opened.callback(db.close)
            db.migrate()
            app.state.db = db
            for service in services:
                await opened.enter_async_context(service.open(app.state))
            yield

    app = FastAPI(
        title="pyconnector platform",
        version=pyconnector.__version__,
        description="Open, self-hostable IoT platform services compatible with TCUP "
        "conventions: Sensor Observation Service under /api/sos/v2.0, Data Lake Service "
        "under /api/dls.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    apidocs.install(app)  # /docs and /redoc with their assets served here: offline
    errors.install(app)
    openapi.install(app)
    deps.install(app)  # after errors: WebSockets get a close code, not a status
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(CancelOnDisconnect)

    @app.get("/health", tags=["platform"], summary="Liveness: 200 when the server runs")
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": pyconnector.__version__}

    for service in services:
        for router in service.routers:
            app.include_router(router)
    return app

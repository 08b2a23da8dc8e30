"""The app factory: nothing is built at import time; one app per settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import pyconnector

from . import datalake, errors, sos
from .backends.blobs import open_blob_store
from .cancel import CancelOnDisconnect
from .db import Database
from .limits import BodyLimitMiddleware
from .settings import Settings
from .sweeper import Sweeper

log = logging.getLogger("pyconnector.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the platform for ``settings``: open its backends in the lifespan."""
    settings = settings or Settings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_path.mkdir(parents=True, exist_ok=True)
        db = Database(settings.database_url, settings.statement_timeout_seconds)
        db.migrate()
        app.state.db = db
        app.state.sos = sos.SosStore(db)
        blobs = open_blob_store(settings.blobs, settings.data_path / "blobs",
                                settings.s3_endpoint_url)
        app.state.dls = datalake.DatalakeStore(db, blobs, settings.dls_quota_bytes)
        sweeper = Sweeper(db, blobs, [settings.data_path / "tmp"],
                          settings.sweep_grace_seconds, settings.sweep_interval_seconds)
        sweeping = asyncio.create_task(sweeper.run())
        try:
            yield
        finally:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
            blobs.close()
            db.close()

    app = FastAPI(
        title="pyconnector platform",
        version=pyconnector.__version__,
        description="Open, self-hostable IoT platform services compatible with TCUP "
        "conventions: Sensor Observation Service under /api/sos/v2.0, Data Lake Service "
        "under /api/dls.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes)
    app.add_middleware(CancelOnDisconnect)

    @app.get("/health", tags=["platform"], summary="Liveness: 200 when the server runs")
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": pyconnector.__version__}

    app.include_router(sos.router)
    app.include_router(datalake.router)
    return app

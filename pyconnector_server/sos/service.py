"""The SOS as a platform service: its routes, tables and store (no CLI commands)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import State

from ..services import Service
from .routes import router
from .store import SosStore


@asynccontextmanager
async def open_sos(state: State) -> AsyncIterator[None]:
    """Hang the SOS store on ``state.sos``; it holds nothing beyond the shared database."""
    state.sos = SosStore(state.db)
    yield


SERVICE = Service(name="sos", routers=[router], tables="pyconnector_server.sos.tables",
                  open=open_sos)

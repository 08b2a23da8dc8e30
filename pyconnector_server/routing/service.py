"""Message Routing as a platform service: its routes, tables and the broker it opens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import State

from ..backends.broker import open_broker
from ..services import Service
from . import mqtt_bridge
from .channels import Channels
from .live import Live
from .routes import router
from .store import RoutingStore


@asynccontextmanager
async def open_routing(state: State) -> AsyncIterator[None]:
    """Open the broker (``--broker``), declare the tenants' exchanges and queues on it
    again, start the channels of the rules that ran, and hang the routing layer on
    ``state.routing``."""
    broker = open_broker(state.settings.broker)
    try:
        live = Live(broker, RoutingStore(state.db))
        live.channels = Channels(live)
        await live.restore()
        await live.channels.restore()
        state.routing = live
        bridge = await mqtt_bridge.start(state.settings, broker)
        try:
            yield
        finally:
            await mqtt_bridge.stop(bridge)
            await live.channels.close()
    finally:
        await broker.close()


SERVICE = Service(name="routing", routers=[router], tables="pyconnector_server.routing.tables",
                  open=open_routing)

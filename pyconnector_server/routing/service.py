"""Message Routing as a platform service: its routes, tables and the broker it opens."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import State

from ..backends.broker import open_broker
from ..services import Service
from . import mqtt_bridge
from .channels import Channels
from .live import Live
from .outbox import OutboxDrain
from .routes import router
from .store import RoutingStore


@asynccontextmanager
async def open_routing(state: State) -> AsyncIterator[None]:
    """Open the broker (``--broker``), declare the tenants' exchanges and queues on it
    again, start the channels of the rules that ran, drain the SOS's routing outbox
    (:mod:`.outbox`), and hang the routing layer on ``state.routing``. It opens after
    the SOS, whose store it reads the outbox from."""
    broker = open_broker(state.settings.broker)
    try:
        live = Live(broker, RoutingStore(state.db))
        live.channels = Channels(live)
        await live.restore()
        await live.channels.restore()
        state.routing = live
        sos = getattr(state, "sos", None)  # a platform without the SOS has no outbox
        draining = asyncio.create_task(OutboxDrain(live, sos, state.db).run()
                                       if sos is not None else asyncio.Event().wait())
        bridge = await mqtt_bridge.start(state.settings, broker)
        try:
            yield
        finally:
            await mqtt_bridge.stop(bridge)
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draining
            await live.channels.close()
    finally:
        await broker.close()


SERVICE = Service(name="routing", routers=[router], tables="pyconnector_server.routing.tables",
                  open=open_routing)

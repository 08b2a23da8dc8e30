"""The tenants' exchanges and queues on the broker: names, declarations, messages.

A tenant names its exchanges and queues as it likes; on the broker each becomes
``t<tenant id>.<name>``, so tenants never meet (one broker, one vhost, no name can reach
another tenant's objects: a name is checked to be the tenant's in the database first).
Each tenant also has a direct exchange, ``Direct.Exchange`` as TCUP calls it, where its
observations enter routing with its routing key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from ..auth import Tenant
from ..backends.broker.base import Broker, BrokerConflict, BrokerNotFound
from ..deps import call
from ..errors import APIError, not_found
from .store import RoutingStore

if TYPE_CHECKING:
    from .channels import Channels

log = logging.getLogger("pyconnector.routing")

DIRECT = "Direct.Exchange"  # the tenant's direct exchange, by TCUP's name


@contextlib.contextmanager
def broker_errors() -> Iterator[None]:
    """The broker's own errors as answers: a missing object 404, a clash 409, a value it
    refuses 400 (the routes check names first, so these are races and leftovers)."""
    try:
        yield
    except BrokerNotFound as exc:
        raise APIError(404, str(exc)) from None
    except BrokerConflict as exc:
        raise APIError(409, str(exc)) from None
    except ValueError as exc:
        raise APIError(400, str(exc)) from None


def physical(tenant_id: int, name: str) -> str:
    """The broker's name of a tenant's exchange or queue."""
    return f"t{tenant_id}.{name}"


class Live:
    """What the routes do on the broker, for a tenant, after checking it owns the names."""

    def __init__(self, broker: Broker, store: RoutingStore) -> None:
        self.broker = broker
        self.store = store
        self._direct: set[int] = set()  # tenants whose direct exchange is declared
        # Exchanges and queues known to be a tenant's: a publish looks its target up here,
        # not in the database. Forgotten when deleted through this process; one deleted
        # through another process is gone from the broker too, which then answers 404.
        self._owned: dict[tuple[int, str], str] = {}
        self._queues: set[tuple[int, str]] = set()
        self._keys: dict[int, str] = {}
        self._lock = asyncio.Lock()
        self.channels: Channels  # the running rules; the service sets it

    async def restore(self) -> None:
        """Declare every tenant's exchanges, queues and bindings again (at start)."""
        for o in await call(self.store.owned):
            if o.kind == "queue":
                await self.broker.declare_queue(physical(o.tenant_id, o.name), o.max_length)
            elif o.kind == "binding":
                if o.exchange == DIRECT:
                    await self.broker.declare_exchange(physical(o.tenant_id, DIRECT), "direct")
                await self.broker.bind(physical(o.tenant_id, o.name),
                                       physical(o.tenant_id, o.exchange), o.topic)
            else:
                await self.broker.declare_exchange(physical(o.tenant_id, o.name), o.kind)

    async def direct(self, t: Tenant) -> str:
        """The broker name of the tenant's direct exchange, declared on first use."""
        name = physical(t.id, DIRECT)
        if t.id not in self._direct:
            async with self._lock:
                await self.broker.declare_exchange(name, "direct")
                self._direct.add(t.id)
        return name

    async def exchange(self, t: Tenant, name: str, field: str = "exchange") -> tuple[str, str]:
        """The broker name and kind of the tenant's exchange ``name`` (its direct
        exchange included), or 404 naming ``field``."""
        if name == DIRECT:
            return await self.direct(t), "direct"
        kind = self._owned.get((t.id, name))
        if kind is None:
            kind = await call(self.store.exchange_kind, t, name)
            if kind is None:
                raise APIError(404, f"{field}: exchange {name!r} not found", field=field)
            self._owned[(t.id, name)] = kind
        return physical(t.id, name), kind

    async def queue(self, t: Tenant, name: str, field: str = "queue") -> str:
        """The broker name of the tenant's queue ``name``, or 404 naming ``field``."""
        if (t.id, name) not in self._queues:
            if not await call(self.store.has_queue, t, name):
                raise APIError(404, f"{field}: queue {name!r} not found", field=field)
            self._queues.add((t.id, name))
        return physical(t.id, name)

    async def routing_key(self, t: Tenant) -> str:
        """The tenant's routing key (it never changes: kept once read)."""
        key = self._keys.get(t.id)
        if key is None:
            key = self._keys[t.id] = await call(self.store.routing_key, t)
        return key

    async def publish(self, exchange: str, key: str, message: Any) -> None:
        """Publish ``message`` (JSON) and wait until the broker has it."""
        with broker_errors():
            await self.broker.publish(exchange, key, orjson.dumps(message),
                                      {"content-type": "application/json"})

    async def create_exchange(self, t: Tenant, name: str, kind: str) -> dict[str, Any]:
        answer = await call(self.store.add_exchange, t, name, kind)
        try:
            with broker_errors():
                await self.broker.declare_exchange(physical(t.id, name), kind)
        except BaseException:
            await call(self.store.remove_exchange, t, name)  # nothing stays of a failure
            raise
        return answer

    async def delete_exchange(self, t: Tenant, name: str) -> None:
        self._owned.pop((t.id, name), None)
        await call(self.store.remove_exchange, t, name)
        try:
            await self.broker.delete_exchange(physical(t.id, name))
        except BrokerNotFound:
            pass  # gone already (an embedded router restarted): the row was what counted

    async def create_queue(self, t: Tenant, name: str, max_length: int | None
                           ) -> dict[str, Any]:
        answer = await call(self.store.add_queue, t, name, max_length)
        try:
            with broker_errors():
                await self.broker.declare_queue(physical(t.id, name), max_length)
        except BaseException:
            await call(self.store.remove_queue, t, name)
            raise
        return answer

    async def delete_queue(self, t: Tenant, name: str) -> None:
        self._queues.discard((t.id, name))
        await call(self.store.remove_queue, t, name)
        try:
            await self.broker.delete_queue(physical(t.id, name))
        except BrokerNotFound:
            pass

    async def queue_length(self, t: Tenant, name: str) -> int:
        try:
            return await self.broker.queue_length(await self.queue(t, name))
        except BrokerNotFound:
            raise not_found(f"queue {name!r}") from None

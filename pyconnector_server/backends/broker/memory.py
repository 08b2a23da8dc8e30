"""The embedded router (``memory://``, the default): AMQP exchanges, queues and bindings
inside this process, on its event loop.

Nothing leaves the process and nothing survives it: a restart starts with only the
predeclared exchanges (``amq.direct``, ``amq.topic``, ``amq.fanout``). Everything runs on
the one event loop the platform serves from, so no locks: a thread that wants to publish
uses :meth:`Broker.publish_threadsafe`.

Memory is bounded: a queue declared without ``max_length`` keeps at most
:data:`DEFAULT_MAX_LENGTH` ready messages, dropping the oldest (RabbitMQ would keep them
on disk; this router has only memory), and deliveries waiting for an acknowledgement are
bounded by each consumer's prefetch.

Routing a key costs one pass over the exchange's bindings the first time; the queues it
reaches are then cached per routing key until a binding changes, so a stream of
observations with a few keys costs a dict look-up per message.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import uuid
from collections import deque
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from .base import (
    PREDECLARED,
    Broker,
    BrokerConflict,
    BrokerNotFound,
    Consumer,
    Delivery,
    Message,
    Subscription,
    brokers,
    exchange_label,
)
from .topic import topic_matches

#: ready messages a queue declared without ``max_length`` keeps (the oldest are dropped)
DEFAULT_MAX_LENGTH = 100_000
#: routing keys whose destinations an exchange remembers before it starts over
ROUTE_CACHE_SIZE = 10_000


class _Queue:
    """Ready messages in order, as ``(sequence, message)``; the sequence puts a message
    given back by a consumer in its old place."""

    def __init__(self, name: str, max_length: int | None) -> None:
        self.name = name
        self.max_length = max_length
        self.limit = max_length or DEFAULT_MAX_LENGTH
        self.ready: deque[tuple[int, Message]] = deque()
        self.dropped = 0
        self.deleted = False
        self._waiters: list[asyncio.Future[None]] = []

    def put(self, seq: int, message: Message) -> None:
        if len(self.ready) >= self.limit:
            self.ready.popleft()
            self.dropped += 1
        self.ready.append((seq, message))
        if self._waiters:
            self.wake()

    def requeue(self, entries: Iterable[tuple[int, Message]]) -> None:
        """Give deliveries back, each in its old place, marked redelivered."""
        if self.deleted:
            return
        for seq, message in entries:
            again = (seq, dataclasses.replace(message, redelivered=True))
            self.ready.insert(bisect.bisect(self.ready, seq, key=lambda e: e[0]), again)
        self.wake()

    def wake(self) -> None:
        """Let every reader waiting in :meth:`changed` look again."""
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def changed(self) -> None:
        """Wait until a message arrives, one is settled, or a reader should stop."""
        w = asyncio.get_running_loop().create_future()
        self._waiters.append(w)
        await w


class _Exchange:
    """An exchange, its bindings ``(queue name, binding key) → queue``, and its routes."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.bindings: dict[tuple[str, str], _Queue] = {}
        self._routes: dict[str, tuple[_Queue, ...]] = {}

    def changed(self) -> None:
        self._routes.clear()

    def route(self, routing_key: str) -> tuple[_Queue, ...]:
        """The queues a message with ``routing_key`` reaches, each once."""
        found = self._routes.get(routing_key)
        if found is None:
            if self.kind == "fanout":
                hits: Iterable[_Queue] = self.bindings.values()
            elif self.kind == "direct":
                hits = (q for (_, key), q in self.bindings.items() if key == routing_key)
            else:
                hits = (q for (_, key), q in self.bindings.items()
                        if topic_matches(key, routing_key))
            found = tuple(dict.fromkeys(hits))
            if len(self._routes) >= ROUTE_CACHE_SIZE:
                self._routes.clear()
            self._routes[routing_key] = found
        return found


class MemoryDelivery(Delivery):
    """A delivery of a :class:`MemoryConsumer`, known to it by sequence number."""

    def __init__(self, message: Message, consumer: MemoryConsumer, seq: int) -> None:
        super().__init__(message)
        self._consumer = consumer
        self._seq = seq

    async def _settle(self, ack: bool, requeue: bool) -> bool:
        return self._consumer.settle(self._seq, ack, requeue)


class MemoryConsumer(Consumer):
    """Takes ready messages from its queue while fewer than ``prefetch`` are unsettled."""

    def __init__(self, broker: MemoryBroker, queue: _Queue, prefetch: int) -> None:
        self.queue = queue.name
        self.prefetch = prefetch
        self._broker = broker
        self._queue = queue
        self._unacked: dict[int, Message] = {}
        self._closed = False

    async def __anext__(self) -> Delivery:
        q = self._queue
        while True:
            if self._closed:
                raise StopAsyncIteration
            if q.deleted:
                raise BrokerNotFound(f"queue {q.name!r} was deleted")
            if q.ready and len(self._unacked) < self.prefetch:
                seq, message = q.ready.popleft()
                self._unacked[seq] = message
                return MemoryDelivery(message, self, seq)
            await q.changed()

    def settle(self, seq: int, ack: bool, requeue: bool) -> bool:
        message = self._unacked.pop(seq, None)
        if message is None:  # closed meanwhile: already given back
            return False
        if not ack and requeue:
            self._queue.requeue([(seq, message)])
        else:
            self._queue.wake()  # room for one more under the prefetch
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._broker._children.discard(self)
        unacked, self._unacked = self._unacked, {}
        self._queue.requeue(sorted(unacked.items(), key=lambda e: e[0]))
        self._queue.wake()


class MemorySubscription(Subscription):
    """A private queue bound to the exchange; its length limit is the buffer."""

    def __init__(self, broker: MemoryBroker, queue: _Queue, exchange: str,
                 binding_key: str, max_buffer: int) -> None:
        self.exchange = exchange
        self.binding_key = binding_key
        self.max_buffer = max_buffer
        self.queue = queue.name
        self._broker = broker
        self._queue = queue
        self._closed = False

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    async def __anext__(self) -> Message:
        q = self._queue
        while True:
            if self._closed:
                raise StopAsyncIteration
            if q.ready:
                return q.ready.popleft()[1]
            if q.deleted:
                raise BrokerNotFound(f"queue {q.name!r} was deleted")
            await q.changed()

    def take_ready(self, limit: int) -> list[Message]:
        ready = self._queue.ready
        if self._closed:
            return []
        return [ready.popleft()[1] for _ in range(min(limit, len(ready)))]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._broker._children.discard(self)
        self._broker._drop_queue(self._queue)


@brokers.register("memory")
class MemoryBroker(Broker):
    """Exchanges and queues in dicts, on the event loop that uses them."""

    kind = "memory"
    shared = False

    def __init__(self) -> None:
        self._exchanges: dict[str, _Exchange] = {
            name: _Exchange(name, kind) for name, kind in PREDECLARED.items() if name}
        self._queues: dict[str, _Queue] = {}
        self._seq = itertools.count()
        self._children: set[MemoryConsumer | MemorySubscription] = set()

    @classmethod
    def from_url(cls, url: str, **_context: Any) -> MemoryBroker:
        """``memory://`` (anything after the scheme is ignored): a new, empty router."""
        return cls()

    def _exchange(self, name: str) -> _Exchange:
        found = self._exchanges.get(name)
        if found is None:
            raise BrokerNotFound(f"{exchange_label(name)} does not exist")
        return found

    def _queue(self, name: str) -> _Queue:
        found = self._queues.get(name)
        if found is None:
            raise BrokerNotFound(f"queue {name!r} does not exist")
        return found

    # -- exchanges ------------------------------------------------------------------------------
    async def _declare_exchange(self, name: str, kind: str) -> None:
        found = self._exchanges.get(name)
        if found is None:
            self._exchanges[name] = _Exchange(name, kind)
        elif found.kind != kind:
            raise BrokerConflict(f"exchange {name!r} exists with kind {found.kind!r}, not "
                                 f"{kind!r}")

    async def _delete_exchange(self, name: str) -> None:
        self._exchange(name)
        del self._exchanges[name]

    # -- queues ---------------------------------------------------------------------------------
    async def _declare_queue(self, name: str, max_length: int | None) -> None:
        found = self._queues.get(name)
        if found is None:
            self._queues[name] = _Queue(name, max_length)
        elif found.max_length != max_length:
            raise BrokerConflict(f"queue {name!r} exists with max_length "
                                 f"{found.max_length}, not {max_length}")

    async def _delete_queue(self, name: str) -> None:
        self._drop_queue(self._queue(name))

    def _drop_queue(self, queue: _Queue) -> None:
        """Forget ``queue`` and its bindings; its readers learn it at their next look."""
        if self._queues.get(queue.name) is queue:
            del self._queues[queue.name]
        for exchange in self._exchanges.values():
            stale = [b for b, q in exchange.bindings.items() if q is queue]
            for b in stale:
                del exchange.bindings[b]
            if stale:
                exchange.changed()
        queue.deleted = True
        queue.ready.clear()
        queue.wake()

    async def _purge_queue(self, name: str) -> int:
        q = self._queue(name)
        n = len(q.ready)
        q.ready.clear()
        return n

    async def _queue_length(self, name: str) -> int:
        return len(self._queue(name).ready)

    # -- bindings -------------------------------------------------------------------------------
    async def _bind(self, queue: str, exchange: str, binding_key: str) -> None:
        ex, q = self._exchange(exchange), self._queue(queue)
        if (queue, binding_key) not in ex.bindings:
            ex.bindings[(queue, binding_key)] = q
            ex.changed()

    async def _unbind(self, queue: str, exchange: str, binding_key: str) -> None:
        ex = self._exchange(exchange)
        self._queue(queue)
        if ex.bindings.pop((queue, binding_key), None) is not None:
            ex.changed()

    # -- messages -------------------------------------------------------------------------------
    async def _publish(self, exchange: str, routing_key: str, body: bytes,
                       headers: dict[str, Any]) -> None:
        if exchange:
            targets = self._exchange(exchange).route(routing_key)
        else:
            found = self._queues.get(routing_key)
            targets = (found,) if found is not None else ()
        if targets:
            message = Message(body, exchange, routing_key, MappingProxyType(headers))
            seq = next(self._seq)
            for q in targets:
                q.put(seq, message)

    async def _consume(self, queue: str, prefetch: int) -> Consumer:
        consumer = MemoryConsumer(self, self._queue(queue), prefetch)
        self._children.add(consumer)
        return consumer

    async def _subscribe(self, exchange: str, binding_key: str,
                         max_buffer: int) -> Subscription:
        ex = self._exchange(exchange)
        q = _Queue(f"amq.gen-{uuid.uuid4().hex}", max_buffer)
        self._queues[q.name] = q
        ex.bindings[(q.name, binding_key)] = q
        ex.changed()
        sub = MemorySubscription(self, q, exchange, binding_key, max_buffer)
        self._children.add(sub)
        return sub

    async def close(self) -> None:
        """End every consumer and subscription (their iteration stops)."""
        for child in list(self._children):
            await child.close()

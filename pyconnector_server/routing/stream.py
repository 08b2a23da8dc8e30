"""Messages leaving the platform as they come: Server-Sent Events and WebSocket sessions.

Both read from the broker asynchronously (never a thread of the pool). A subscription to
an exchange is a private, bounded queue: a reader that falls behind loses the oldest
messages, counted (``dropped``), rather than grow the server's memory. A queue is
consumed with acknowledgements: SSE acknowledges a message once its event is written,
a WebSocket client with an ``ack`` frame (unacknowledged messages go back to the queue
when the connection ends).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..auth import Tenant
from ..backends.broker.base import BrokerNotFound, Consumer, Delivery, Message, Subscription
from ..backends.errors import BackendError
from ..bodies import check
from ..errors import APIError
from .live import DIRECT, Live, broker_errors
from .wire import Frame

KEEPALIVE_SECONDS = 15.0  # an SSE comment line keeps proxies from closing an idle stream
SUBSCRIPTION_BUFFER = 1000  # messages a subscriber may fall behind before the oldest drop
PREFETCH = 100  # unacknowledged queue messages a reader may hold
MAX_SUBSCRIPTIONS = 32  # per WebSocket connection
MAX_FRAME_BYTES = 1 << 20  # a client frame (a publish's message included)
MAX_BATCH = 1000  # messages in one publish frame, or one "messages" frame to a subscriber
BATCH_BYTES = 1 << 20  # a "messages" frame stops growing past this many bytes of bodies


def decode(body: bytes) -> Any:
    """A message body as JSON when it is JSON, else as text (MQTT devices send both)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def sse_event(data: bytes, event: str = "message", event_id: str | None = None) -> bytes:
    """One Server-Sent Event; a body with line breaks becomes several ``data:`` lines."""
    lines = [f"event: {event}".encode()]
    if event_id is not None:
        lines.append(f"id: {event_id}".encode())
    lines += [b"data: " + line for line in data.splitlines() or [b""]]
    return b"\n".join(lines) + b"\n\n"


async def next_or_none(source: AsyncIterator[Any], timeout: float) -> Any:
    """The next item of ``source``, or None after ``timeout`` seconds without one."""
    try:
        return await asyncio.wait_for(source.__anext__(), timeout)
    except asyncio.TimeoutError:
        return None


async def sse_exchange(subscription: Subscription, label: str) -> AsyncIterator[bytes]:
    """An exchange's messages as SSE events (``id`` counts them); the subscription
    closes when the client goes (Starlette cancels the stream)."""
    async with subscription:
        yield b": subscribed to " + label.encode() + b"\n\n"
        n = 0
        while True:
            message: Message | None = await next_or_none(subscription, KEEPALIVE_SECONDS)
            if message is None:
                yield b": keepalive\n\n"
                continue
            n += 1
            yield sse_event(message.body, event_id=str(n))


async def sse_queue(consumer: Consumer, label: str) -> AsyncIterator[bytes]:
    """A queue's messages as SSE events, each acknowledged once written: a client that
    goes leaves the unwritten ones in the queue."""
    async with consumer:
        yield b": consuming " + label.encode() + b"\n\n"
        n = 0
        while True:
            delivery: Delivery | None = await next_or_none(consumer, KEEPALIVE_SECONDS)
            if delivery is None:
                yield b": keepalive\n\n"
                continue
            n += 1
            yield sse_event(delivery.body, event_id=str(n))
            await delivery.ack()


class Session:
    """One WebSocket connection: publishes, subscriptions and acknowledgements, as
    :class:`~pyconnector_server.routing.wire.Frame` documents. A bad frame gets an error
    frame; the connection stays open."""

    def __init__(self, websocket: WebSocket, t: Tenant, live: Live) -> None:
        self.websocket = websocket
        self.t = t
        self.live = live
        self.send_lock = asyncio.Lock()
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.pending: dict[tuple[int, int], Delivery] = {}  # (subscription, tag)
        self.next_id = 0

    async def send(self, frame: dict[str, Any]) -> None:
        async with self.send_lock:  # subscriptions and answers share the socket
            await self.websocket.send_text(orjson.dumps(frame).decode())

    async def run(self) -> None:
        try:
            while True:
                raw = await self.websocket.receive_text()
                ref = None
                try:
                    if len(raw) > MAX_FRAME_BYTES:
                        raise APIError(413, f"frame too large: at most {MAX_FRAME_BYTES} "
                                       "bytes")
                    try:
                        data = orjson.loads(raw)
                    except orjson.JSONDecodeError as exc:
                        raise APIError(400, f"malformed JSON: {exc}") from None
                    if isinstance(data, dict) and isinstance(data.get("ref"), str):
                        ref = data["ref"][:64]
                    frame = check(Frame, data, "frame")
                    await self.handle(frame)
                except APIError as exc:
                    await self.send({"type": "error", "ref": ref, **exc.body()})
                except (BrokerNotFound, ValueError) as exc:
                    await self.send({"type": "error", "ref": ref, "code": 404 if isinstance(
                        exc, BrokerNotFound) else 400, "message": str(exc)})
                except BackendError as exc:
                    await self.send({"type": "error", "ref": ref, "code": exc.status,
                                     "message": exc.message})
        except WebSocketDisconnect:
            pass
        finally:
            # What the client did not acknowledge goes back to its queue, for the next.
            for delivery in self.pending.values():
                with contextlib.suppress(Exception):
                    await delivery.nack(True)
            self.pending.clear()
            for task in self.tasks.values():
                task.cancel()
            for task in self.tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def handle(self, frame: Frame) -> None:
        if frame.action == "publish":
            if frame.messages is not None and "message" in frame.model_fields_set:
                raise APIError(400, "frame.messages: give message or messages, not both",
                               field="frame.messages")
            exchange, key = await target(self.live, self.t, frame)
            for message in frame.messages if frame.messages is not None else [frame.message]:
                await self.live.publish(exchange, key, message)
            if frame.ref is not None:  # an answer only when asked: publishing streams
                await self.send({"type": "ok", "action": "publish", "ref": frame.ref})
        elif frame.action == "subscribe":
            if len(self.tasks) >= MAX_SUBSCRIPTIONS:
                raise APIError(400, f"at most {MAX_SUBSCRIPTIONS} subscriptions per "
                               "connection")
            if frame.queue is not None and frame.batch is not None:
                raise APIError(400, "frame.batch: queue messages come one per frame (each is "
                               "acknowledged by its tag)", field="frame.batch")
            reader = await open_reader(self.live, self.t, frame.exchange,
                                       frame.topic or frame.routingKey or "#", frame.queue,
                                       "frame.")
            sub_id = self.next_id
            self.next_id += 1
            if isinstance(reader, Consumer):
                pump = self.pump_queue(sub_id, reader, frame.queue or "")
            else:
                pump = self.pump_exchange(sub_id, reader, frame.exchange or "",
                                          frame.batch or 1)
            self.tasks[sub_id] = asyncio.create_task(pump)
            await self.send({"type": "subscribed", "id": sub_id, "ref": frame.ref})
        elif frame.action == "unsubscribe":
            task = self.tasks.pop(self._id(frame), None)
            if task is None:
                raise APIError(404, f"frame.id: no subscription {frame.id}", field="frame.id")
            task.cancel()
            await self.send({"type": "unsubscribed", "id": frame.id, "ref": frame.ref})
        else:  # ack, nack
            delivery = self.pending.pop((self._id(frame), frame.tag or 0), None)
            if delivery is None:
                raise APIError(404, f"frame.tag: no unacknowledged message {frame.tag} on "
                               f"subscription {frame.id}", field="frame.tag")
            await (delivery.ack() if frame.action == "ack" else delivery.nack(True))
            await self.send({"type": "ok", "action": frame.action, "ref": frame.ref})

    @staticmethod
    def _id(frame: Frame) -> int:
        if frame.id is None:
            raise APIError(400, "frame.id: required", field="frame.id")
        return frame.id

    async def pump_exchange(self, sub_id: int, subscription: Subscription, name: str,
                            batch: int) -> None:
        """Each message in a ``message`` frame; with ``batch`` > 1, the first message and
        those that came while the last frame was sent (up to ``batch`` messages and about
        :data:`BATCH_BYTES`) in one ``messages`` frame: no waiting to fill a batch."""
        async with subscription:
            async for message in subscription:
                if batch == 1:
                    await self.send({"type": "message", "id": sub_id, "exchange": name,
                                     "topic": message.routing_key,
                                     "dropped": subscription.dropped,
                                     "message": decode(message.body)})
                    continue
                group, size = [message], len(message.body)
                while len(group) < batch and size < BATCH_BYTES and (
                        more := subscription.take_ready(1)):
                    group += more
                    size += len(more[0].body)
                await self.send({"type": "messages", "id": sub_id, "exchange": name,
                                 "dropped": subscription.dropped, "messages": [
                                     {"topic": m.routing_key, "message": decode(m.body)}
                                     for m in group]})

    async def pump_queue(self, sub_id: int, consumer: Consumer, name: str) -> None:
        tag = 0
        async with consumer:
            async for delivery in consumer:
                tag += 1
                self.pending[(sub_id, tag)] = delivery
                await self.send({"type": "message", "id": sub_id, "queue": name, "tag": tag,
                                 "redelivered": delivery.redelivered,
                                 "message": decode(delivery.body)})


async def open_reader(live: Live, t: Tenant, exchange: str | None, topic: str,
                      queue: str | None, prefix: str = "") -> Consumer | Subscription:
    """What a stream (SSE, a WebSocket subscription) reads: the tenant's ``queue``,
    consumed with acknowledgements, or a bounded subscription to ``exchange``'s
    ``topic``. Errors name the fields under ``prefix`` ("frame." on the WebSocket)."""
    if queue is not None:
        if exchange is not None:
            raise APIError(400, f"{prefix}queue: give a queue or an exchange, not both",
                           field=f"{prefix}queue")
        q = await live.queue(t, queue, f"{prefix}queue")
        with broker_errors():
            return await live.broker.consume(q, PREFETCH)
    if exchange is None:
        raise APIError(400, f"{prefix}exchange: subscribe to an exchange (with a topic) or "
                       "a queue", field=f"{prefix}exchange")
    physical_name, _ = await live.exchange(t, exchange, f"{prefix}exchange")
    with broker_errors():
        return await live.broker.subscribe(physical_name, topic, SUBSCRIPTION_BUFFER)


async def target(live: Live, t: Tenant, where: Any) -> tuple[str, str]:
    """The broker exchange and routing key of a publish: a queue (through the default
    exchange), an exchange with a topic, or the tenant's direct exchange with its
    routing key."""
    if where.queue is not None:
        if where.exchange is not None:
            raise APIError(400, "queue: give a queue or an exchange, not both", field="queue")
        return "", await live.queue(t, where.queue)
    key = where.topic if where.topic is not None else where.routingKey
    if where.exchange is None or where.exchange == DIRECT:
        own_key = await live.routing_key(t)
        return await live.direct(t), own_key if key is None else key
    exchange, kind = await live.exchange(t, where.exchange)
    if key is None and kind != "fanout":
        raise APIError(400, "topic: a topic (routing key) is needed to publish to "
                       f"{kind} exchange {where.exchange!r}", field="topic")
    return exchange, key or ""

"""Routing on RabbitMQ through aio-pika (``amqp://user:password@host:5672/vhost``).

**Connections.** Two robust connections per broker, opened at first use, one for
publishing and one for the rest (RabbitMQ's advice: a publisher that RabbitMQ slows down,
or whose connection it closes, must not take consumers with it). When RabbitMQ goes
away each reconnects every :data:`RECONNECT_SECONDS` and redeclares what its channels
declared. Publishing has one channel with publisher confirms; every consumer and
subscription has a channel of its own, so a slow or failing one does not stall the
others, and each resumes by itself after a reconnect. Declaring, deleting and binding
use a short-lived channel each: AMQP answers a missing exchange by closing the channel,
which must not be one that others use.

**Durability.** Exchanges and queues are durable and messages persistent, so what was
confirmed survives a broker restart; a delivery not acknowledged when its channel went
away is delivered again (``redelivered``). A subscription's queue is exclusive and
auto-deleted: messages routed while the connection is down are not kept for it. Its name
is chosen here (``pyc.sub.<uuid>``), not by the server, so that it can be redeclared
under the same name after a reconnect.

**Slow subscribers.** A subscription consumes without acknowledgements into a buffer of
``max_buffer`` messages that drops (and counts) the oldest; its queue on the server has
the same ``x-max-length``, should this process stop reading its socket at all.

**Errors.** Everything aio-pika, aiormq or the network raises is translated at this
boundary (:func:`amqp_errors`): a missing exchange or queue → :class:`BrokerNotFound`,
other properties → :class:`BrokerConflict`, refused credentials or permissions →
:class:`BackendError`, anything about reaching RabbitMQ → :class:`BackendUnavailable`.
An operation waits at most :data:`TIMEOUT_SECONDS` for a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..errors import BackendError, BackendUnavailable
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

#: seconds between two attempts to reconnect to RabbitMQ
RECONNECT_SECONDS = 1
#: longest an operation waits for a connection (then 503), and for a publish confirm
TIMEOUT_SECONDS = 10
#: pause before publishing again after the shared channel or connection failed
RETRY_SECONDS = 0.1
#: exchanges known to exist that publishing remembers (beyond it, it asks again)
KNOWN_EXCHANGES = 100_000


def _aio_pika() -> Any:
    try:
        import aio_pika
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("the amqp:// message broker needs aio-pika: "
                           "pip install 'pyconnector-platform[server,amqp]'") from None
    return aio_pika


def amqp_error(exc: BaseException, subject: str = "") -> Exception | None:
    """Our error for an exception of aio-pika, aiormq or the network while working on
    ``subject`` ("exchange 'x'"); ``None`` for an exception that is not theirs."""
    import aiormq.exceptions as e

    text = _reply_text(exc)
    if isinstance(exc, e.ChannelNotFoundEntity):
        return BrokerNotFound(f"{subject} does not exist" if subject else text)
    if isinstance(exc, e.ChannelPreconditionFailed):
        return BrokerConflict(f"{subject} exists with other properties ({text})")
    if isinstance(exc, e.ChannelLockedResource):
        return BrokerConflict(f"{subject} is another connection's private queue")
    if isinstance(exc, e.ChannelAccessRefused):
        return BackendError(f"message broker refused: {text}")
    if isinstance(exc, e.AuthenticationError | e.ProbableAuthenticationError):
        return BackendError("message broker refused the credentials")
    if isinstance(exc, e.ConnectionNotAllowed) or (
            isinstance(exc, e.InvalidFrameError) and "Connection.Close" in str(exc)):
        # RabbitMQ closes the handshake this way for a virtual host that does not exist
        # or that the user may not use.
        return BackendError("message broker refused the connection: no such virtual host, "
                            "or the user may not use it")
    if isinstance(exc, e.AMQPConnectionError | e.ChannelClosed | e.ChannelInvalidStateError
                  | ConnectionError | OSError | asyncio.TimeoutError):
        # The message names no host: the client needs to know to wait, not our network.
        return BackendUnavailable("message broker unavailable: it cannot be reached "
                                  f"({type(exc).__name__}); try again later")
    if isinstance(exc, e.AMQPError):
        return BackendError(f"message broker failed: {text}")
    return None


def _reply_text(exc: BaseException) -> str:
    """RabbitMQ's reply text (``NOT_FOUND - no queue 'q' in vhost '/'``) if it sent one."""
    for arg in exc.args:
        text = getattr(arg, "reply_text", None)
        if text:
            return str(text)
    return " ".join(str(a) for a in exc.args if isinstance(a, str | int)) or type(exc).__name__


@contextlib.contextmanager
def amqp_errors(subject: str = "") -> Iterator[None]:
    """Re-raise what :func:`amqp_error` recognises as ours, ``from`` the original."""
    try:
        yield
    except (BrokerNotFound, BrokerConflict, BackendError):
        raise
    except Exception as exc:
        ours = amqp_error(exc, subject)
        if ours is None:
            raise
        raise ours from exc


def _channel_lost(incoming: Any) -> bool:
    """True if the channel that carried ``incoming`` is closed (aio-pika raises then)."""
    try:
        return bool(incoming.channel.is_closed)
    except Exception:
        return True


def _message(incoming: Any) -> Message:
    return Message(incoming.body, incoming.exchange or "", incoming.routing_key or "",
                   dict(incoming.headers or {}), bool(incoming.redelivered))


class AmqpDelivery(Delivery):
    """A delivery on a consumer's channel; settling it after that channel closed is
    refused (the broker delivers the message again)."""

    def __init__(self, incoming: Any) -> None:
        super().__init__(_message(incoming))
        self._incoming = incoming

    async def _settle(self, ack: bool, requeue: bool) -> bool:
        incoming = self._incoming
        if _channel_lost(incoming):
            return False
        try:
            if ack:
                await incoming.ack()
            else:
                await incoming.reject(requeue=requeue)
        except Exception as exc:
            if amqp_error(exc) is None:
                raise
            return False  # the channel went away meanwhile
        return True


class _Reader:
    """What a consumer and a subscription share: a channel of their own, a buffer the
    channel's callback fills, and a way to wait on it."""

    def __init__(self, broker: AmqpBroker, channel: Any) -> None:
        self._broker = broker
        self._channel = channel
        self._buffer: deque[Any] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._gone: str | None = None  # why the queue went away (deleted)
        self._closing: asyncio.Future[None] | None = None  # held so it is not collected

    async def _next_incoming(self) -> Any:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._buffer:
                return self._buffer.popleft()
            if self._gone:
                raise BrokerNotFound(self._gone)
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _watch_cancel(self, tag: str, queue: str) -> None:
        """Learn when RabbitMQ cancels the consumer (its queue was deleted), now and on
        every channel the robust channel reopens."""

        def on_cancel(frame: Any) -> None:
            if frame.consumer_tag == tag and not self._closed:
                self._gone = f"queue {queue!r} was deleted"
                self._wakeup.set()
                # Closing stops aio-pika from trying to restore a consumer of a queue
                # that no longer exists.
                self._closing = asyncio.ensure_future(self._close_channel())

        async def hook(*_: Any) -> None:
            underlay = await self._channel.get_underlay_channel()
            underlay.on_consumer_cancel_callbacks.add(on_cancel)

        self._channel.reopen_callbacks.add(hook)
        await hook()

    async def _close_channel(self) -> None:
        with contextlib.suppress(Exception):
            await self._channel.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        self._broker._children.discard(self)
        await self._close_channel()


class AmqpConsumer(_Reader, Consumer):
    """Deliveries of a queue on a channel with ``prefetch`` as its QoS."""

    def __init__(self, broker: AmqpBroker, channel: Any, queue: str, prefetch: int) -> None:
        super().__init__(broker, channel)
        self.queue = queue
        self.prefetch = prefetch

    async def on_message(self, incoming: Any) -> None:
        self._buffer.append(incoming)
        self._wakeup.set()

    async def __anext__(self) -> Delivery:
        while True:
            incoming = await self._next_incoming()
            # Received on a channel lost since: RabbitMQ delivers it again on the new one.
            if not _channel_lost(incoming):
                return AmqpDelivery(incoming)


class AmqpSubscription(_Reader, Subscription):
    """A private queue consumed without acknowledgements into a drop-oldest buffer."""

    def __init__(self, broker: AmqpBroker, channel: Any, queue: str, exchange: str,
                 binding_key: str, max_buffer: int) -> None:
        super().__init__(broker, channel)
        self.queue = queue
        self.exchange = exchange
        self.binding_key = binding_key
        self.max_buffer = max_buffer
        self._dropped = 0

    @property
    def dropped(self) -> int:
        return self._dropped

    async def on_message(self, incoming: Any) -> None:
        if len(self._buffer) >= self.max_buffer:
            self._buffer.popleft()
            self._dropped += 1
        self._buffer.append(incoming)
        self._wakeup.set()

    async def __anext__(self) -> Message:
        return _message(await self._next_incoming())

    def take_ready(self, limit: int) -> list[Message]:
        if self._closed:
            return []
        buffer = self._buffer
        return [_message(buffer.popleft()) for _ in range(min(limit, len(buffer)))]


@brokers.register("amqps")
@brokers.register("amqp")
class AmqpBroker(Broker):
    """Exchanges and queues on RabbitMQ (or another AMQP 0-9-1 broker)."""

    kind = "amqp"

    def __init__(self, url: str) -> None:
        self.url = url
        #: shown by ``rabbitmqctl list_connections client_properties``: whose connection
        self.connection_name = f"pyconnector-{uuid.uuid4().hex[:12]}"
        self._connections: dict[str, Any] = {}  # "consume", "publish" → connection
        self._publisher: Any = None
        self._lock = asyncio.Lock()
        self._known_exchanges: set[str] = set(PREDECLARED)
        self._children: set[_Reader] = set()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **_context: Any) -> AmqpBroker:
        """``amqp://user:password@host:port/vhost`` (``amqps://`` for TLS); the
        connection opens at first use."""
        _aio_pika()
        return cls(url)

    async def _connect(self, role: str = "consume") -> Any:
        """The robust connection for ``role`` ("consume": consumers, subscriptions and
        declarations; "publish"), opened on first use, once ready (at most
        :data:`TIMEOUT_SECONDS`)."""
        if self._closed:
            raise BackendUnavailable("message broker unavailable: the broker was closed")
        if role not in self._connections:
            async with self._lock:
                if role not in self._connections:
                    with amqp_errors():
                        self._connections[role] = await _aio_pika().connect_robust(
                            self.url, timeout=TIMEOUT_SECONDS,
                            reconnect_interval=RECONNECT_SECONDS,
                            client_properties={
                                "connection_name": f"{self.connection_name} {role}"})
        connection = self._connections[role]
        if not connection.connected.is_set():
            with amqp_errors():
                await asyncio.wait_for(connection.ready(), TIMEOUT_SECONDS)
        return connection

    @contextlib.asynccontextmanager
    async def _admin(self, subject: str = "") -> AsyncIterator[Any]:
        """A short-lived plain channel (not restored on reconnect) for one operation."""
        connection = await self._connect()
        with amqp_errors(subject):
            channel = _aio_pika().Channel(connection, publisher_confirms=False)
            await asyncio.wait_for(channel.initialize(), TIMEOUT_SECONDS)
            try:
                yield channel
            finally:
                if not channel.is_closed:
                    await channel.close()

    async def _check_exchange(self, channel: Any, name: str) -> None:
        with amqp_errors(exchange_label(name)):
            await channel.declare_exchange(name, passive=True)

    async def _check_queue(self, channel: Any, name: str) -> Any:
        with amqp_errors(f"queue {name!r}"):
            return await channel.declare_queue(name, passive=True)

    # -- exchanges ------------------------------------------------------------------------------
    async def _declare_exchange(self, name: str, kind: str) -> None:
        async with self._admin(f"exchange {name!r}") as ch:
            await ch.declare_exchange(name, type=kind, durable=True)
        self._remember_exchange(name)

    async def _delete_exchange(self, name: str) -> None:
        self._known_exchanges.discard(name)
        async with self._admin(f"exchange {name!r}") as ch:
            await self._check_exchange(ch, name)
            await ch.exchange_delete(name)

    def _remember_exchange(self, name: str) -> None:
        if len(self._known_exchanges) >= KNOWN_EXCHANGES:
            self._known_exchanges = set(PREDECLARED)
        self._known_exchanges.add(name)

    # -- queues ---------------------------------------------------------------------------------
    async def _declare_queue(self, name: str, max_length: int | None) -> None:
        arguments = {"x-max-length": max_length} if max_length else None
        async with self._admin(f"queue {name!r}") as ch:
            await ch.declare_queue(name, durable=True, arguments=arguments)

    async def _delete_queue(self, name: str) -> None:
        async with self._admin(f"queue {name!r}") as ch:
            await self._check_queue(ch, name)
            await ch.queue_delete(name)

    async def _purge_queue(self, name: str) -> int:
        async with self._admin(f"queue {name!r}") as ch:
            queue = await self._check_queue(ch, name)
            return int((await queue.purge()).message_count)

    async def _queue_length(self, name: str) -> int:
        async with self._admin(f"queue {name!r}") as ch:
            queue = await self._check_queue(ch, name)
            return int(queue.declaration_result.message_count)

    # -- bindings -------------------------------------------------------------------------------
    async def _bind(self, queue: str, exchange: str, binding_key: str) -> None:
        async with self._admin() as ch:
            await self._check_exchange(ch, exchange)
            q = await self._check_queue(ch, queue)
            await q.bind(exchange, binding_key)

    async def _unbind(self, queue: str, exchange: str, binding_key: str) -> None:
        async with self._admin() as ch:
            await self._check_exchange(ch, exchange)
            q = await self._check_queue(ch, queue)
            await q.unbind(exchange, binding_key)

    # -- messages -------------------------------------------------------------------------------
    async def _publish(self, exchange: str, routing_key: str, body: bytes,
                       headers: dict[str, Any]) -> None:
        """Publish on the shared confirm channel, once the exchange is known to exist.

        Publishing to a missing exchange makes RabbitMQ close the channel, failing every
        message in flight on it, and a frame that then still reaches the closed channel
        makes it close the whole connection. So an exchange is checked on a channel of its
        own before its first publish; publishing has a connection of its own, so that
        consumers and subscriptions never pay for it; and a publish that fails with the
        shared channel or connection (an exchange deleted by another process, a broker
        restart) is tried again for up to :data:`TIMEOUT_SECONDS` while its own exchange
        exists. A message may then arrive twice (its confirm, not the message, was
        lost): delivery is at least once.
        """
        from pamqp.commands import Basic

        if exchange not in self._known_exchanges:
            await self._exchange_exists(exchange)
        properties = Basic.Properties(delivery_mode=2, headers=headers or None)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            try:
                await self._publish_once(exchange, routing_key, body, properties)
                return
            except (BrokerNotFound, BackendUnavailable):
                if "publish" not in self._connections or time.monotonic() > deadline:
                    raise  # never connected, or for too long: tell the caller
            await asyncio.sleep(RETRY_SECONDS)
            if exchange:  # the default exchange always exists
                self._known_exchanges.discard(exchange)
                try:
                    await self._exchange_exists(exchange)
                except BackendUnavailable:
                    if time.monotonic() > deadline:
                        raise

    async def _exchange_exists(self, exchange: str) -> None:
        """:class:`BrokerNotFound` unless ``exchange`` exists (asked on its own channel)."""
        async with self._admin() as ch:
            await self._check_exchange(ch, exchange)
        self._remember_exchange(exchange)

    async def _publish_once(self, exchange: str, routing_key: str, body: bytes,
                            properties: Any) -> None:
        from pamqp.commands import Basic

        channel = await self._publishing_channel()
        with amqp_errors(exchange_label(exchange)):
            connection = self._connections.get("publish")
            if connection is None or channel.is_closed or not connection.connected.is_set():
                # Reconnecting: wait for it, not for ever.
                underlay = await asyncio.wait_for(channel.get_underlay_channel(),
                                                  TIMEOUT_SECONDS)
            else:
                underlay = await channel.get_underlay_channel()
            confirm = await underlay.basic_publish(
                body, exchange=exchange, routing_key=routing_key, properties=properties,
                timeout=TIMEOUT_SECONDS)
        if not isinstance(confirm, Basic.Ack):
            raise BackendUnavailable("message broker unavailable: it did not take the "
                                     "message (negative confirm); try again later")

    async def _publishing_channel(self) -> Any:
        if self._publisher is None:
            connection = await self._connect("publish")
            async with self._lock:
                if self._publisher is None:
                    with amqp_errors():
                        self._publisher = await connection.channel(publisher_confirms=True)
        return self._publisher

    async def _consume(self, queue: str, prefetch: int) -> Consumer:
        async with self._admin() as ch:
            await self._check_queue(ch, queue)
        connection = await self._connect()
        with amqp_errors(f"queue {queue!r}"):
            channel = await connection.channel(publisher_confirms=False)
            consumer = AmqpConsumer(self, channel, queue, prefetch)
            try:
                await channel.set_qos(prefetch_count=prefetch)
                q = await channel.declare_queue(queue, passive=True)
                tag = await q.consume(consumer.on_message, no_ack=False)
                await consumer._watch_cancel(tag, queue)
            except BaseException:
                await consumer.close()
                raise
        self._children.add(consumer)
        return consumer

    async def _subscribe(self, exchange: str, binding_key: str,
                         max_buffer: int) -> Subscription:
        async with self._admin() as ch:
            await self._check_exchange(ch, exchange)
        connection = await self._connect()
        name = f"pyc.sub.{uuid.uuid4().hex}"
        with amqp_errors(exchange_label(exchange)):
            channel = await connection.channel(publisher_confirms=False)
            sub = AmqpSubscription(self, channel, name, exchange, binding_key, max_buffer)
            try:
                q = await channel.declare_queue(name, exclusive=True, auto_delete=True,
                                                arguments={"x-max-length": max_buffer})
                await q.bind(exchange, binding_key)
                tag = await q.consume(sub.on_message, no_ack=True)
                await sub._watch_cancel(tag, name)
            except BaseException:
                await sub.close()
                raise
        self._children.add(sub)
        return sub

    async def close(self) -> None:
        """Close every consumer and subscription, then the connection."""
        self._closed = True
        for child in list(self._children):
            await child.close()
        connections, self._connections, self._publisher = self._connections, {}, None
        for connection in connections.values():
            with contextlib.suppress(Exception):
                await connection.close()

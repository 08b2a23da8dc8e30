"""The message broker interface: AMQP 0-9-1 exchanges, queues and bindings, async.

Message Routing moves observations between *exchanges* (``direct``, ``topic``,
``fanout``) and *queues*; a *binding* sends what an exchange routes with a matching key
to a queue. Every operation is a coroutine: WebSocket and SSE subscribers wait on the
broker for as long as they are connected, and must never hold a thread of the pool that
the other routes share.

The promises every broker keeps (one contract suite checks them,
``tests/backends/test_broker_contract.py``):

* **AMQP semantics.** The default exchange ``""`` routes to the queue named by the
  routing key; ``direct`` routes on the exact key, ``topic`` on ``.``-separated words
  with ``*`` (one word) and ``#`` (zero or more words), ``fanout`` to every bound queue.
  A message nobody's binding matches is dropped; a queue bound twice gets one copy.
* **Confirmed publishing.** :meth:`Broker.publish` returns once the broker has taken the
  message (publisher confirms on RabbitMQ), so a caller may then forget it (the SOS
  outbox deletes its row).
* **Ordered, acknowledged queues.** A queue hands out messages in order; a delivery not
  acknowledged when its consumer goes away (closed, or its connection lost) is delivered
  again with ``redelivered`` set. Messages are persistent on RabbitMQ (durable queues
  and exchanges), so a broker restart loses nothing a publisher was told was taken.
* **Bounded subscriptions.** :meth:`Broker.subscribe` gives a private queue (exclusive,
  gone when the subscription closes) holding at most ``max_buffer`` messages for its
  reader. **Policy for a slow reader: the oldest message is dropped** and
  :attr:`Subscription.dropped` counts it; the subscription stays open, so a live view
  skips ahead to fresh messages rather than grow server memory or stall the publisher.
* **Checked names.** Exchange and queue names, routing and binding keys are at most
  255 bytes of UTF-8 (AMQP's short string) without control characters; names starting
  with ``amq.`` are the broker's own (``amq.topic`` may be published to and bound, not
  declared or deleted). A bad one raises :class:`ValueError` naming it and the limit,
  before anything reaches the broker.
* **One error vocabulary.** A missing exchange or queue raises :class:`BrokerNotFound`
  (a :class:`KeyError`; the service answers 404), a redeclaration with other properties
  :class:`BrokerConflict` (409); a broker that cannot be reached
  :class:`~pyconnector_server.backends.errors.BackendUnavailable` (503) and one that
  refuses :class:`~pyconnector_server.backends.errors.BackendError` (502). No exception
  type of a client library gets out.

What a message *means* (SOS JSON, tenants, rules) is the routing service's business; the
broker moves bytes with a few headers.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import anyio

from ..registry import Registry

ExchangeKind = Literal["direct", "topic", "fanout"]
#: the exchange kinds a broker declares
EXCHANGE_KINDS: tuple[str, ...] = ("direct", "topic", "fanout")
#: the exchanges every broker has from the start, and their kinds (as in RabbitMQ)
PREDECLARED: dict[str, str] = {"": "direct", "amq.direct": "direct", "amq.topic": "topic",
                               "amq.fanout": "fanout"}

#: longest exchange or queue name, routing or binding key, in UTF-8 bytes (AMQP shortstr)
MAX_NAME_BYTES = 255
#: largest message body (RabbitMQ's default ``max_message_size``)
MAX_BODY_BYTES = 128 * 1024 * 1024
#: most headers on one message, and the longest header value in UTF-8 bytes
MAX_HEADERS = 64
MAX_HEADER_VALUE_BYTES = 4096
#: largest consumer prefetch (AMQP's ``prefetch-count`` is a 16-bit number)
MAX_PREFETCH = 65535
#: largest subscription buffer and queue length, in messages
MAX_BUFFER = 100_000
MAX_QUEUE_LENGTH = 10_000_000

T = TypeVar("T")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BrokerNotFound(KeyError):
    """An exchange or queue that does not exist (the service answers 404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class BrokerConflict(ValueError):
    """An exchange or queue exists with other properties (another kind, another length
    limit), or is another connection's private queue (the service answers 409)."""


# -- names ----------------------------------------------------------------------------------
def check_name(value: str, what: str, *, empty: bool = False) -> str:
    """``value`` if it is a valid ``what`` ("exchange name", "routing key"…), else
    :class:`ValueError` naming it and the limit. ``empty``: ``""`` is allowed."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if not value and not empty:
        raise ValueError(f"{what} must not be empty")
    # A character is at most 4 bytes of UTF-8: short names need no encoding to count.
    if len(value) > MAX_NAME_BYTES // 4 and \
            len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise ValueError(f"{what} {value[:40]!r}… is too long: at most {MAX_NAME_BYTES} bytes "
                         "of UTF-8")
    if _CONTROL.search(value):
        raise ValueError(f"{what} {value!r} contains a control character")
    return value


def check_own_name(value: str, what: str) -> str:
    """A name a client may declare or delete: valid, and not the broker's (``amq.*``)."""
    check_name(value, what)
    if value.startswith("amq."):
        raise ValueError(f"{what} {value!r} is reserved: names starting with 'amq.' belong "
                         "to the broker")
    return value


def check_count(value: int, what: str, low: int, high: int) -> int:
    """``value`` if it is an integer in ``[low, high]``, else :class:`ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer from {low} to {high}, got {value!r}")
    return value


def check_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Message headers as a new dict: at most :data:`MAX_HEADERS`, names as routing keys,
    values str (at most :data:`MAX_HEADER_VALUE_BYTES`), int, float or bool."""
    if not headers:
        return {}
    if not isinstance(headers, Mapping):
        raise ValueError("headers must be a mapping of names to values")
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"too many headers: at most {MAX_HEADERS}")
    out: dict[str, Any] = {}
    for name, value in headers.items():
        check_name(name, "header name")
        if isinstance(value, str):
            if len(value.encode("utf-8", "surrogatepass")) > MAX_HEADER_VALUE_BYTES:
                raise ValueError(f"header {name!r} is too long: at most "
                                 f"{MAX_HEADER_VALUE_BYTES} bytes")
        elif not isinstance(value, int | float | bool):
            raise ValueError(f"header {name!r} must be a string or a number, got "
                             f"{type(value).__name__}")
        out[name] = value
    return out


def check_body(body: bytes) -> bytes:
    """``body`` as bytes if it is bytes and at most :data:`MAX_BODY_BYTES` long."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ValueError(f"message body must be bytes, got {type(body).__name__}")
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"message body is too large: at most {MAX_BODY_BYTES} bytes")
    return bytes(body)


def check_kind(kind: str) -> str:
    if kind not in EXCHANGE_KINDS:
        raise ValueError(f"exchange kind must be one of {', '.join(EXCHANGE_KINDS)}, "
                         f"got {kind!r}")
    return kind


# -- messages -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    """A message as it reached a queue: its bytes, headers, and where it was published."""

    body: bytes
    exchange: str
    routing_key: str
    headers: Mapping[str, Any] = field(default_factory=dict)
    #: delivered before to a consumer that went away without acknowledging it
    redelivered: bool = False


class Delivery(ABC):
    """A message handed to a :class:`Consumer`: acknowledge it, or give it back.

    Each delivery is settled once; settling it again raises :class:`RuntimeError`.
    """

    def __init__(self, message: Message) -> None:
        self.message = message
        self.settled = False

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def routing_key(self) -> str:
        return self.message.routing_key

    @property
    def exchange(self) -> str:
        return self.message.exchange

    @property
    def headers(self) -> Mapping[str, Any]:
        return self.message.headers

    @property
    def redelivered(self) -> bool:
        return self.message.redelivered

    async def ack(self) -> bool:
        """The message is handled: the queue forgets it. False when the consumer (or its
        connection) is already gone: the queue then delivers the message again."""
        return await self._settle_once(ack=True, requeue=False)

    async def nack(self, requeue: bool = True) -> bool:
        """The message was not handled: back to the queue, in its place, ``redelivered``
        (``requeue``), or dropped. False as for :meth:`ack`."""
        return await self._settle_once(ack=False, requeue=requeue)

    async def _settle_once(self, ack: bool, requeue: bool) -> bool:
        if self.settled:
            raise RuntimeError("this delivery was already acknowledged or rejected")
        self.settled = True
        return await self._settle(ack, requeue)

    @abstractmethod
    async def _settle(self, ack: bool, requeue: bool) -> bool:
        """Tell the queue; False if the channel that carried the delivery is gone."""


async def closed_anyway(reader: Any) -> None:
    """``await reader.close()``, even in a task being cancelled. A reader leaves the block
    that opened it because its client went away: Starlette then cancels the stream under
    an anyio cancel scope, which cancels every ``await`` after the first too, and a close
    that talks to the broker (RabbitMQ's channel, a subscription's private queue) would be
    cut short and leave them behind. Shielded, it finishes."""
    with anyio.CancelScope(shield=True):
        await reader.close()


class _Closing:
    """An async iterator with ``close`` that is also an async context manager."""

    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await closed_anyway(self)


class Consumer(_Closing, ABC):
    """Deliveries of one queue, in order, at most ``prefetch`` unacknowledged at a time.

    Iteration ends (``StopAsyncIteration``) once :meth:`close` was called, and raises
    :class:`BrokerNotFound` if the queue is deleted. Closing gives back what was not
    acknowledged (the queue delivers it again, ``redelivered``).
    """

    queue: str
    prefetch: int

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    @abstractmethod
    async def __anext__(self) -> Delivery:
        """The next delivery, waiting for one."""

    @abstractmethod
    async def close(self) -> None:
        """Stop consuming (idempotent); unacknowledged deliveries go back to the queue."""


class Subscription(_Closing, ABC):
    """Messages an exchange routes with a matching binding key, from the moment the
    subscription exists, in order, through a private queue of at most ``max_buffer``
    messages; when it is full the oldest is dropped and counted in :attr:`dropped`.
    """

    exchange: str
    binding_key: str
    max_buffer: int
    #: the private queue's name (generated; exclusive to this subscription)
    queue: str

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    @property
    @abstractmethod
    def dropped(self) -> int:
        """How many messages were dropped because the reader fell ``max_buffer`` behind."""

    @abstractmethod
    async def __anext__(self) -> Message:
        """The next message, waiting for one."""

    @abstractmethod
    def take_ready(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages already here, in order, without waiting (a reader
        that sends them on in batches takes what came while it sent the last one)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop, and delete the private queue (idempotent)."""


class Opening(Generic[T]):
    """What :meth:`Broker.consume` and :meth:`Broker.subscribe` return: ``await`` it for
    the consumer or subscription, or use it as ``async with`` to close it on exit."""

    def __init__(self, open: Callable[[], Awaitable[T]]) -> None:
        self._open = open
        self._opened: Any = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._open().__await__()

    async def __aenter__(self) -> T:
        self._opened = await self._open()
        return self._opened  # type: ignore[no-any-return]

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await closed_anyway(self._opened)


# -- the broker -----------------------------------------------------------------------------
class Broker(ABC):
    """Exchanges, queues and bindings over bytes; see the module docstring for the
    promises. Implementations provide the primitives marked abstract, taking names
    already checked; the public methods check arguments first."""

    #: a short name for logs: "memory", "amqp"
    kind = "abstract"
    #: whether other processes reach the same exchanges and queues (a broker server), or
    #: only this one (the embedded router)
    shared = True

    # -- exchanges ----------------------------------------------------------------------------
    async def declare_exchange(self, name: str, kind: str = "direct") -> None:
        """Create exchange ``name`` of ``kind`` (direct, topic, fanout) unless it exists;
        :class:`BrokerConflict` if it exists with another kind."""
        await self._declare_exchange(check_own_name(name, "exchange name"), check_kind(kind))

    async def delete_exchange(self, name: str) -> None:
        """Delete exchange ``name`` and its bindings; :class:`BrokerNotFound` if missing."""
        await self._delete_exchange(check_own_name(name, "exchange name"))

    # -- queues -------------------------------------------------------------------------------
    async def declare_queue(self, name: str, max_length: int | None = None) -> None:
        """Create queue ``name`` unless it exists. ``max_length``: keep at most that many
        ready messages, dropping the oldest (AMQP's ``x-max-length``). A queue that exists
        with another ``max_length`` raises :class:`BrokerConflict`."""
        if max_length is not None:
            check_count(max_length, "max_length", 1, MAX_QUEUE_LENGTH)
        await self._declare_queue(check_own_name(name, "queue name"), max_length)

    async def delete_queue(self, name: str) -> None:
        """Delete queue ``name``, its messages and bindings; its consumers end with
        :class:`BrokerNotFound`. :class:`BrokerNotFound` if it is missing."""
        await self._delete_queue(check_own_name(name, "queue name"))

    async def purge_queue(self, name: str) -> int:
        """Drop the ready messages of queue ``name``; return how many."""
        return await self._purge_queue(check_name(name, "queue name"))

    async def queue_length(self, name: str) -> int:
        """How many messages queue ``name`` holds ready for delivery (not counting those
        delivered and not yet acknowledged, as AMQP counts)."""
        return await self._queue_length(check_name(name, "queue name"))

    # -- bindings ------------------------------------------------------------------------------
    async def bind(self, queue: str, exchange: str, binding_key: str = "") -> None:
        """Route what ``exchange`` gets with a key matching ``binding_key`` to ``queue``
        (idempotent); :class:`BrokerNotFound` if either is missing."""
        await self._bind(check_name(queue, "queue name"), _bindable(exchange),
                         check_name(binding_key, "binding key", empty=True))

    async def unbind(self, queue: str, exchange: str, binding_key: str = "") -> None:
        """Remove that binding (removing one that does not exist is not an error);
        :class:`BrokerNotFound` if the queue or exchange is missing."""
        await self._unbind(check_name(queue, "queue name"), _bindable(exchange),
                           check_name(binding_key, "binding key", empty=True))

    # -- messages -----------------------------------------------------------------------------
    async def publish(self, exchange: str, routing_key: str, body: bytes,
                      headers: Mapping[str, Any] | None = None) -> None:
        """Publish ``body`` to ``exchange`` (``""``: straight to the queue named
        ``routing_key``); return once the broker has taken it. :class:`BrokerNotFound`
        if the exchange is missing; a message no binding matches is dropped."""
        await self._publish(check_name(exchange, "exchange name", empty=True),
                            check_name(routing_key, "routing key", empty=True),
                            check_body(body), check_headers(headers))

    def publish_threadsafe(self, loop: asyncio.AbstractEventLoop, exchange: str,
                           routing_key: str, body: bytes,
                           headers: Mapping[str, Any] | None = None,
                           timeout: float = 30) -> None:
        """:meth:`publish` from a thread that is not ``loop``'s (a route running in the
        thread pool), waiting at most ``timeout`` seconds; the broker itself stays on
        ``loop``, the event loop it is used from."""
        future = asyncio.run_coroutine_threadsafe(
            self.publish(exchange, routing_key, body, headers), loop)
        future.result(timeout)

    def consume(self, queue: str, prefetch: int = 100) -> Opening[Consumer]:
        """Consume ``queue``: ``async with broker.consume(q) as deliveries:`` (or
        ``await`` it and close it yourself). At most ``prefetch`` deliveries are
        unacknowledged at a time. :class:`BrokerNotFound` if the queue is missing."""
        check_name(queue, "queue name")
        check_count(prefetch, "prefetch", 1, MAX_PREFETCH)
        return Opening(lambda: self._consume(queue, prefetch))

    def subscribe(self, exchange: str, binding_key: str = "#",
                  max_buffer: int = 1000) -> Opening[Subscription]:
        """Messages ``exchange`` routes with a key matching ``binding_key`` from now on,
        through a private queue of at most ``max_buffer`` messages (the oldest is dropped
        when the reader falls behind; see :class:`Subscription`).
        :class:`BrokerNotFound` if the exchange is missing."""
        _bindable(exchange)
        check_name(binding_key, "binding key", empty=True)
        check_count(max_buffer, "max_buffer", 1, MAX_BUFFER)
        return Opening(lambda: self._subscribe(exchange, binding_key, max_buffer))

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close connections; consumers and subscriptions end. Idempotent."""

    # -- primitives ---------------------------------------------------------------------------
    @abstractmethod
    async def _declare_exchange(self, name: str, kind: str) -> None: ...

    @abstractmethod
    async def _delete_exchange(self, name: str) -> None: ...

    @abstractmethod
    async def _declare_queue(self, name: str, max_length: int | None) -> None: ...

    @abstractmethod
    async def _delete_queue(self, name: str) -> None: ...

    @abstractmethod
    async def _purge_queue(self, name: str) -> int: ...

    @abstractmethod
    async def _queue_length(self, name: str) -> int: ...

    @abstractmethod
    async def _bind(self, queue: str, exchange: str, binding_key: str) -> None: ...

    @abstractmethod
    async def _unbind(self, queue: str, exchange: str, binding_key: str) -> None: ...

    @abstractmethod
    async def _publish(self, exchange: str, routing_key: str, body: bytes,
                       headers: dict[str, Any]) -> None: ...

    @abstractmethod
    async def _consume(self, queue: str, prefetch: int) -> Consumer: ...

    @abstractmethod
    async def _subscribe(self, exchange: str, binding_key: str,
                         max_buffer: int) -> Subscription: ...


def _bindable(exchange: str) -> str:
    """An exchange a queue may be bound to: any valid name but the default exchange."""
    check_name(exchange, "exchange name", empty=True)
    if not exchange:
        raise ValueError("exchange name must not be empty: the default exchange routes to "
                         "every queue by its name and takes no bindings")
    return exchange


def exchange_label(name: str) -> str:
    """How messages name an exchange: the default one has no name."""
    return f"exchange {name!r}" if name else "the default exchange"


#: the message brokers by URL scheme; each implementation registers itself here
brokers: Registry[Broker] = Registry("message broker")

"""The Message Routing and WebSocket connector: ``conn.srwsUtils()`` (TCUP's ``srwsUtils``).

Three ways to the platform's ``/MessageRouting/v2.0``:

- REST (the connector's pooled httpx client): publishing (``SendRequestExchange``) and the
  administration a script needs (exchanges, rules and their channels, queues);
- a WebSocket (``websockets.sync.client``): publishing on one connection kept per
  :class:`srwsUtils` object, and one connection per subscription;
- Server-Sent Events (httpx streaming): :meth:`srwsUtils.sseSubscribe`.

A subscription reads its connection on a thread of its own into a bounded buffer, so the
connection keeps answering the platform's pings however slowly the script takes messages
(a WebSocket that stops reading is closed by the other end's keepalive). When the buffer
is full the oldest message is dropped and counted (``sub.dropped``), as the platform does
for a subscriber that falls behind; a queue never loses one that way, because the platform
sends at most ``PREFETCH`` unacknowledged queue messages, fewer than the buffer holds.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import itertools
import json
import ssl
import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, cast, overload
from urllib.parse import quote

import httpx

from . import errors, payloads
from .http import HTTPCore, tls_verify
from .mqtt import _json_default
from .times import TimeLike

if TYPE_CHECKING:  # formats loads pandas: only lists asked as tables or frames need it
    import pandas as pd
    from typing_extensions import Self
    from websockets.sync.client import ClientConnection

    from .formats import JSON, JSONObject, JSONRecords, ResponseType, TextType

BASE: Final = "/MessageRouting/v2.0"
WS_PATH: Final = f"{BASE}/ws"
SSE_PATH: Final = f"{BASE}/sse"
DIRECT_EXCHANGE: Final = "Direct.Exchange"  # the tenant's direct exchange, by TCUP's name
# Limits. The platform checks names and topics itself (400 naming the field); these bound
# what the connector holds or sends.
SUBSCRIPTION_BUFFER: Final = 1000  # messages a subscription holds before the oldest drop
PREFETCH: Final = 100  # the platform's unacknowledged-message limit per queue subscription
FRAME_BATCH: Final = 100  # messages the platform may put in one frame of a subscription
MAX_BATCH: Final = 1000  # messages in one publish frame (the platform's limit)
MAX_FRAME_BYTES: Final = 1 << 20  # a frame the platform accepts (a publish's message in it)
MAX_MESSAGE_BYTES: Final = 16 << 20  # a frame the connector accepts (as max_body_bytes)
MAX_PULL: Final = 1000  # messages one getMessages may take (the platform's limit)
MAX_TIMEOUT_S: Final = 86_400.0
# The platform writes an SSE comment every 15 s; four missed ones mean the stream is dead.
SSE_READ_TIMEOUT: Final = 60.0

_refs = itertools.count(1)  # frame references, unique per process


def _path(kind: str, name: str) -> str:
    return f"{BASE}/{kind}/{quote(str(name), safe='')}"


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _decode(data: str) -> Any:
    """A message body as JSON when it is JSON, else as text (as the platform does)."""
    try:
        return json.loads(data)
    except ValueError:
        return data


def render(data: JSON, response_type: str) -> JSON | pd.DataFrame:
    """:func:`pyconnector.formats.render`, loaded (with pandas) when first used."""
    from .formats import render as shape

    return shape(data, response_type)


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 <= timeout <= MAX_TIMEOUT_S:
        raise errors.ConfigError(f"timeout: must be a number of seconds from 0 to "
                                 f"{MAX_TIMEOUT_S:g}, or None; not {timeout!r}")
    return float(timeout)


def _target(exchange: str | None, topic: str | None, queue: str | None) -> dict[str, Any]:
    """Where a publish goes, as the platform reads it: a queue, an exchange with a topic,
    or (neither) the tenant's direct exchange with its routing key."""
    if queue is not None and (exchange is not None or topic is not None):
        raise errors.ConfigError("queue: publish to a queue or to an exchange (with a "
                                 "topic), not both")
    return _drop_none({"exchange": exchange, "topic": topic, "queue": queue})


# -- the WebSocket ---------------------------------------------------------------------------
class _Socket:
    """How to open the platform's WebSocket with the connector's configuration: the base
    URL (http→ws, https→wss, with the same CA handling), the API key (and JWT), timeouts;
    and how its failures become the connector's errors."""

    def __init__(self, http: HTTPCore) -> None:
        self.http = http
        config = http.config
        base = config.url.rstrip("/")
        scheme, sep, rest = base.partition("://")
        if not sep or scheme.lower() not in ("http", "https"):
            raise errors.ConfigError(f"URL: {config.url!r} is not an http:// or https:// URL")
        self.secure = scheme.lower() == "https"
        self.url = ("wss://" if self.secure else "ws://") + rest + WS_PATH
        self.timeout = config.timeout

    def __repr__(self) -> str:
        return self.url

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.secure:
            return None
        verify = tls_verify(self.http.config.verify)
        if isinstance(verify, ssl.SSLContext):
            return verify
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def open(self) -> ClientConnection:
        """A new connection; the platform's refusals raised as the connector's errors."""
        from websockets.exceptions import InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        from . import __version__

        headers = {"x-api-key": self.http.config.api_key, **self.http._auth()}
        try:
            ws = connect(self.url, ssl=self._ssl(), additional_headers=headers,
                         user_agent_header=f"pyconnector/{__version__}",
                         open_timeout=self.timeout, close_timeout=self.timeout,
                         max_size=MAX_MESSAGE_BYTES)
            # Entered as websockets 17.1+ asks (a bare connect() is deprecated there); the
            # connection is closed by our close()/stop(), which __exit__ would only repeat.
            return ws.__enter__()
        except InvalidStatus as exc:
            response = exc.response
            body: Any = _decode(response.body.decode("utf-8", "replace")) \
                if response.body else None
            message = body.get("message") if isinstance(body, dict) else None
            raise errors.api_error(response.status_code, str(message or response.reason_phrase),
                                   body, method="GET", url=self.url) from exc
        except builtins.TimeoutError as exc:
            raise errors.TimeoutError(f"WebSocket {self.url}: no handshake within "
                                      f"{self.timeout:g} s") from exc
        except OSError as exc:  # refused, unreachable, TLS verification failed
            raise errors.ConnectError(f"cannot connect to {self.url}: {exc}") from exc
        except WebSocketException as exc:
            raise errors.TransportError(f"WebSocket {self.url}: {exc}") from exc

    def closed_error(self, exc: Exception, doing: str) -> errors.PyConnectorError:
        """The connector's error for a connection that ended (``exc``: websockets'
        ConnectionClosed): the platform closes a refused WebSocket with 1008 (policy
        violation) and the reason, a failure of its own with 1011."""
        from websockets.exceptions import ConnectionClosed

        rcvd = exc.rcvd if isinstance(exc, ConnectionClosed) else None
        where = {"method": "WebSocket", "url": self.url}
        if rcvd is not None and rcvd.code == 1008:
            return errors.AuthenticationError(401, rcvd.reason or "refused", None, **where)
        if rcvd is not None and rcvd.code == 1011:
            return errors.ServerError(500, rcvd.reason or "platform error", None, **where)
        return errors.TransportError(f"WebSocket {self.url} closed while {doing}: {exc}")

    def frame_error(self, frame: dict[str, Any], action: str) -> errors.APIError:
        """The connector's error for an ``error`` frame (its code and message)."""
        code = frame.get("code")
        return errors.api_error(code if isinstance(code, int) else 400,
                                str(frame.get("message", "")), frame,
                                method=f"WebSocket {action}", url=self.url)


def _send_frame(socket: _Socket, ws: ClientConnection, frame: dict[str, Any]) -> None:
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)
    if len(text.encode("utf-8")) > MAX_FRAME_BYTES:
        raise errors.PayloadTooLargeError(
            413, f"frame too large: {len(text.encode('utf-8'))} bytes; the platform takes "
            f"at most {MAX_FRAME_BYTES}", method=f"WebSocket {frame['action']}",
            url=socket.url)
    from websockets.exceptions import ConnectionClosed

    try:
        ws.send(text)
    except ConnectionClosed as exc:
        raise socket.closed_error(exc, frame["action"]) from exc


def _answer(socket: _Socket, ws: ClientConnection, ref: str, action: str,
            others: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Read frames until the one answering ``ref``: returned, or raised if an error.
    Messages read meanwhile go to ``others`` when given (else nothing else is expected)."""
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            frame = _decode(ws.recv(timeout=socket.timeout, decode=True))
            if not isinstance(frame, dict):
                continue
            if frame.get("ref") != ref:
                if others is not None and frame.get("type") == "message":
                    others.append(frame)
                continue
            if frame.get("type") == "error":
                raise socket.frame_error(frame, action)
            return frame
    except builtins.TimeoutError as exc:
        raise errors.TimeoutError(f"WebSocket {action}: no answer from {socket.url} within "
                                  f"{socket.timeout:g} s") from exc
    except ConnectionClosed as exc:
        raise socket.closed_error(exc, action) from exc


class WebSocketSubscription:
    """Messages of an exchange's topic (or a queue) as they arrive, over a WebSocket of
    its own (``srws.webSocketSubTopic`` / ``srws.webSocketSubQueue``).

    >>> with srws.webSocketSubTopic("ex1", "test") as sub:
    ...     for message in sub:      # blocks for each; ends when sub.stop() is called
    ...         print(message)
    >>> sub.get(timeout=5)           # one message, or TimeoutError

    Messages are what was published (JSON as dicts/lists, else text). The frame each came
    in (``topic``, ``dropped``; a queue's ``tag``, ``redelivered``) is ``sub.last``.
    """

    def __init__(self, socket: _Socket, target: dict[str, Any], *, autoAck: bool = False,  # noqa: N803
                 buffer: int = SUBSCRIPTION_BUFFER) -> None:
        if isinstance(buffer, bool) or not isinstance(buffer, int) \
                or not PREFETCH <= buffer <= 1_000_000:
            raise errors.ConfigError(f"buffer: must be an integer from {PREFETCH} to "
                                     f"1000000 messages, not {buffer!r}")
        self._socket = socket
        self.target = target
        self.queue: str | None = target.get("queue")
        self.autoAck = autoAck  # noqa: N815 - the argument's name
        self.id: int | None = None
        self.received = 0
        self.dropped = 0  # by this buffer; the platform's own count is in sub.last
        self.last: dict[str, Any] | None = None
        self._frames: collections.deque[dict[str, Any]] = collections.deque(maxlen=buffer)
        self._state = threading.Condition()
        self._stopped = False
        self._ended: errors.PyConnectorError | None = None
        self._ws = socket.open()
        try:
            ref = f"sub{next(_refs)}"
            # An exchange's messages come in batches of what is waiting (no delay: a
            # batch is what came while the last frame was on its way), unpacked here.
            batch = {} if self.queue is not None else {"batch": FRAME_BATCH}
            _send_frame(socket, self._ws, {"action": "subscribe", "ref": ref, **target,
                                           **batch})
            early: list[dict[str, Any]] = []
            self.id = _answer(socket, self._ws, ref, "subscribe", early)["id"]
            self._frames.extend(early)
        except BaseException:
            self._ws.close()
            raise
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"pyconnector-ws {self._label()}")
        self._reader.start()

    def _label(self) -> str:
        if self.queue is not None:
            return f"queue {self.queue!r}"
        return f"{self.target.get('exchange')} {self.target.get('topic', '#')!r}"

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "ended" if self._ended else "subscribed"
        return (f"<WebSocketSubscription {self._label()} on {self._socket.url}: {state}, "
                f"{self.received} received, {len(self._frames)} waiting>")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __iter__(self) -> Iterator[Any]:
        """Each message as it arrives (blocking) until :meth:`stop`; raises if the
        connection ends otherwise."""
        while True:
            try:
                yield self.get()
            except _Stopped:
                return

    def _read(self) -> None:
        """The reader thread: frames into the buffer until the connection ends."""
        from websockets.exceptions import ConnectionClosed

        ended: errors.PyConnectorError | None = None
        try:
            for text in self._ws:
                frame = _decode(text if isinstance(text, str) else text.decode())
                if not isinstance(frame, dict):
                    continue
                if frame.get("type") == "messages":
                    frames = [{"type": "message", "id": frame.get("id"),
                               "exchange": frame.get("exchange"),
                               "dropped": frame.get("dropped"), **m}
                              for m in frame.get("messages", [])]
                elif frame.get("type") in ("message", "error"):
                    frames = [frame]
                else:
                    continue  # answers to acks and the like
                with self._state:
                    for one in frames:
                        if len(self._frames) == self._frames.maxlen:
                            self.dropped += 1
                        self._frames.append(one)
                    self._state.notify_all()
        except ConnectionClosed as exc:
            ended = self._socket.closed_error(exc, f"subscribed to {self._label()}")
        except Exception as exc:  # the thread must end with the reason recorded
            ended = errors.TransportError(f"WebSocket {self._socket.url}: {exc}")
        with self._state:
            if not self._stopped:  # not ours: the platform (or the network) ended it
                self._ended = ended or errors.TransportError(
                    f"the platform closed the WebSocket of {self._label()}")
            self._state.notify_all()

    def get(self, timeout: float | None = None) -> Any:
        """The next message, waiting for it at most ``timeout`` seconds (``None``: no
        limit): TimeoutError after that. With ``autoAck`` a queue's message is
        acknowledged as it is taken; else :meth:`ack` it."""
        wait = _check_timeout(timeout)
        with self._state:
            if not self._state.wait_for(
                    lambda: self._frames or self._stopped or self._ended is not None, wait):
                raise errors.TimeoutError(f"no message on {self._label()} within "
                                          f"{timeout:g} s")
            if self._stopped:
                raise _Stopped(f"the subscription to {self._label()} was stopped")
            if not self._frames:
                assert self._ended is not None
                raise self._ended
            frame = self._frames.popleft()
        if frame.get("type") == "error":
            raise self._socket.frame_error(frame, "subscription")
        self.last = frame
        self.received += 1
        if self.queue is not None and self.autoAck:
            self.ack()
        return frame.get("message")

    def _settle(self, action: str, tag: int | None) -> None:
        if self.queue is None:
            raise errors.PyConnectorError(f"{action}: only queue messages are acknowledged; "
                                          f"this subscription is to {self._label()}")
        if tag is None:
            if self.last is None:
                raise errors.PyConnectorError(f"{action}: no message taken yet")
            tag = cast(int, self.last["tag"])
        # The answer (ok, or an error frame) is read by the reader thread: an error is
        # raised by the next get().
        _send_frame(self._socket, self._ws, {"action": action, "id": self.id, "tag": tag,
                                             "ref": f"{action}{tag}"})

    def ack(self, tag: int | None = None) -> None:
        """Acknowledge a queue message: the one taken last, or the one of ``tag``
        (``sub.last["tag"]``). Unacknowledged messages go back to the queue when the
        subscription stops."""
        self._settle("ack", tag)

    def nack(self, tag: int | None = None) -> None:
        """Give a queue message back to the queue (redelivered, to this subscriber or
        another)."""
        self._settle("nack", tag)

    def stop(self) -> None:
        """End the subscription, from the loop or another thread: iteration ends and
        :meth:`get` raises, messages still buffered are dropped, the connection closes
        (a queue's unacknowledged messages go back to it) and the reader thread ends."""
        with self._state:
            self._stopped = True
            self._frames.clear()  # a queue's go back to it with the connection
            self._state.notify_all()
        self._ws.close()
        if self._reader is not threading.current_thread():
            self._reader.join()

    close = stop


class _Stopped(errors.PyConnectorError):
    """The subscription was stopped: iteration ends; ``get`` raises it."""


# -- Server-Sent Events ---------------------------------------------------------------------
class SSEStream:
    """The platform's Server-Sent Events of an exchange's topic or of a queue, as an
    iterator of messages (``srws.sseSubscribe``). Iterating blocks for each message; end
    it with ``break`` and :meth:`close` (or a ``with`` block). A queue's message is
    acknowledged by the platform once it has written its event."""

    def __init__(self, http: HTTPCore, params: dict[str, Any]) -> None:
        self.params = params
        self.last_id: str | None = None
        self.received = 0
        self._stack = contextlib.ExitStack()
        timeout = httpx.Timeout(http.config.timeout, read=SSE_READ_TIMEOUT)
        self._response = self._stack.enter_context(
            http.stream("GET", SSE_PATH, params=params, timeout=timeout))
        self._lines = self._response.iter_lines()
        try:
            # The platform says when its subscription is live: what is published after
            # this returns is streamed.
            for line in self._lines:
                if line.startswith((": subscribed", ": consuming")):
                    break
        except httpx.HTTPError as exc:
            self.close()
            raise errors.TransportError(f"SSE {params}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<SSEStream {self.params} received={self.received}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[Any]:
        data: list[str] = []
        event_id: str | None = None
        try:
            for line in self._lines:
                if not line:
                    if data:
                        self.last_id, self.received = event_id, self.received + 1
                        yield _decode("\n".join(data))
                    data, event_id = [], None
                    continue
                if line.startswith(":"):
                    continue  # a comment: keepalive
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    data.append(value)
                elif field == "id":
                    event_id = value
        except httpx.HTTPError as exc:
            raise errors.TransportError(f"SSE {self.params}: {exc}") from exc

    def close(self) -> None:
        """Close the stream (the platform stops its subscription)."""
        self._stack.close()


# -- the connector --------------------------------------------------------------------------
class srwsUtils:  # noqa: N801 - TCUP's name
    """Message Routing and WebSocket: publish observations, subscribe to what rules route,
    and administer exchanges, rules and queues (TCUP's ``srwsUtils``).

    >>> srws = conn.srwsUtils()
    >>> json = srws.data('ts1', {'obs1': 'test_1', 'obs2': 1}, 'tf1')
    >>> srws.SendRequestExchange(json)      # REST, to the tenant's direct exchange
    >>> srws.WebSocketPublish(json)         # the same over the WebSocket
    >>> sub = srws.webSocketSubTopic("ex1", "test")
    >>> srws.close()                        # the WebSocket and every subscription

    Lists (``getExchanges``, ``getRules``, ``getQueues``, ``getMessages``) take
    ``responseType``: ``'json'``, ``'table'``, ``'dataframe'`` or ``'csv'``.
    """

    def __init__(self, http: HTTPCore) -> None:
        self.http = http
        self._socket = _Socket(http)
        self._ws: ClientConnection | None = None
        self._lock = threading.Lock()
        self._subscriptions: list[WebSocketSubscription] = []

    def __repr__(self) -> str:
        return (f"<srwsUtils {self.http.describe(BASE)} "
                f"websocket={'open' if self._ws else 'closed'} "
                f"subscriptions={len(self._subscriptions)}>")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the publishing WebSocket and stop every subscription made here."""
        with self._lock:
            ws, self._ws = self._ws, None
            subscriptions, self._subscriptions = self._subscriptions, []
        if ws is not None:
            ws.close()
        for sub in subscriptions:
            sub.stop()

    # -- publishing ---------------------------------------------------------------------
    @staticmethod
    def data(sensor: str, outputs: dict[str, Any], feature: str | None = None,
             time: TimeLike | None = None) -> JSONObject:
        """A one-record SOS observation body (as ``sos.data``): what rules read."""
        return payloads.observation(sensor, outputs, feature, time)

    def SendRequestExchange(self, json: Any, exchange: str | None = None,  # noqa: N802
                            topic: str | None = None, queue: str | None = None) -> JSONObject:
        """Publish ``json`` over REST: to ``queue``; to ``exchange`` with ``topic``; or
        (neither) to the tenant's direct exchange with its routing key, where rules with a
        ``Direct`` input read. Returns the platform's ``{code, message}`` once the broker
        has the message."""
        body = {**_target(exchange, topic, queue), "message": json}
        return cast("JSONObject", self.http.request("POST", f"{BASE}/publish", json=body))

    def WebSocketPublish(self, json: Any, exchange: str | None = None,  # noqa: N802
                         topic: str | None = None, queue: str | None = None) -> JSONObject:
        """Publish ``json`` over this object's WebSocket (opened on first use, kept until
        :meth:`close`), to the same targets as :meth:`SendRequestExchange`. Returns the
        platform's ``ok`` frame once the broker has the message."""
        return self._publish({"action": "publish", **_target(exchange, topic, queue),
                              "message": json, "ref": f"pub{next(_refs)}"})

    def WebSocketPublishBatch(self, jsons: Sequence[Any], exchange: str | None = None,  # noqa: N802
                              topic: str | None = None,
                              queue: str | None = None) -> JSONObject:
        """Publish each of ``jsons`` (1 to 1000), in order, in one frame, to the same
        targets as :meth:`WebSocketPublish`: far fewer round trips for a stream of
        readings. Returns the ``ok`` frame once the broker has them all."""
        if isinstance(jsons, str | bytes) or not isinstance(jsons, Sequence) \
                or not 1 <= len(jsons) <= MAX_BATCH:
            raise errors.ConfigError(f"jsons: must be a list of 1 to {MAX_BATCH} messages")
        return self._publish({"action": "publish", **_target(exchange, topic, queue),
                              "messages": list(jsons), "ref": f"pub{next(_refs)}"})

    def _publish(self, frame: dict[str, Any]) -> JSONObject:
        with self._lock:
            fresh = not self._usable()
            ws = self._connection()
            try:
                _send_frame(self._socket, ws, frame)
            except errors.PayloadTooLargeError:
                raise  # refused before sending: the connection is fine
            except errors.TransportError:
                self._drop()
                if fresh:
                    raise
                # A kept connection the platform closed while idle (a restart): nothing
                # was sent, so once more on a new one.
                ws = self._connection()
                self._send_or_drop(ws, frame)
            except errors.PyConnectorError:
                self._drop()
                raise
            try:
                return _answer(self._socket, ws, frame["ref"], "publish")
            except (errors.TransportError, errors.AuthenticationError, errors.ServerError):
                self._drop()  # in doubt: the next publish opens a fresh connection
                raise

    def _send_or_drop(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        try:
            _send_frame(self._socket, ws, frame)
        except errors.PayloadTooLargeError:
            raise
        except errors.PyConnectorError:
            self._drop()
            raise

    def _usable(self) -> bool:
        from websockets.protocol import State

        return self._ws is not None and self._ws.state is State.OPEN

    def _drop(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def _connection(self) -> ClientConnection:
        if not self._usable():
            self._drop()
            self._ws = self._socket.open()
        assert self._ws is not None
        return self._ws

    # -- subscribing --------------------------------------------------------------------
    def _subscribe(self, target: dict[str, Any], **options: Any) -> WebSocketSubscription:
        sub = WebSocketSubscription(self._socket, target, **options)
        with self._lock:
            # Stopped ones are forgotten, so a long-lived srws does not hold them all.
            self._subscriptions = [s for s in self._subscriptions if not s._stopped]
            self._subscriptions.append(sub)
        return sub

    def webSocketSubTopic(self, exchange: str, topic: str = "#",  # noqa: N802
                          buffer: int = SUBSCRIPTION_BUFFER) -> WebSocketSubscription:
        """Subscribe to ``exchange``'s messages whose topic matches ``topic`` (AMQP
        wildcards: ``*`` one word, ``#`` any number). Returns once the platform confirmed
        the subscription, so a message published afterwards arrives; iterate the result,
        or ``get(timeout=…)``, and ``stop()`` it. ``buffer``: messages held before the
        oldest are dropped (counted in ``dropped``)."""
        return self._subscribe({"exchange": exchange, "topic": topic}, buffer=buffer)

    def webSocketSubQueue(self, queue: str, autoAck: bool = False,  # noqa: N802,N803
                          buffer: int = SUBSCRIPTION_BUFFER) -> WebSocketSubscription:
        """Consume the tenant's ``queue``: each message is the subscription's until it is
        acknowledged (``sub.ack()``, or ``autoAck=True`` to acknowledge as it is taken);
        those not acknowledged go back to the queue when the subscription stops."""
        return self._subscribe({"queue": queue}, autoAck=autoAck, buffer=buffer)

    def sseSubscribe(self, exchange: str | None = None, topic: str = "#",  # noqa: N802
                     queue: str | None = None) -> SSEStream:
        """The platform's Server-Sent Events of ``exchange``'s ``topic`` or of ``queue``, as
        an iterator of messages; returns once the platform's subscription is live."""
        if (exchange is None) == (queue is None):
            raise errors.ConfigError("sseSubscribe: give an exchange (with a topic) or a "
                                     "queue")
        params = {"queue": queue} if queue is not None else {"exchange": exchange,
                                                             "topic": topic}
        return SSEStream(self.http, params)

    # -- exchanges ----------------------------------------------------------------------
    def createExchange(self, name: str, type: Literal["topic", "direct", "fanout"] = "topic"  # noqa: N802,A002
                       ) -> JSONObject:
        """Create an exchange of the tenant (``topic`` by default): rules publish to it,
        subscribers read from it."""
        return cast("JSONObject", self.http.request(
            "POST", f"{BASE}/topicExchanges", json={"exchangeName": name, "type": type}))

    @overload
    def getExchanges(self, responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getExchanges(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getExchanges(self, responseType: TextType) -> str: ...

    def getExchanges(self, responseType: ResponseType = "json") -> JSON | pd.DataFrame:  # noqa: N802,N803
        """The tenant's exchanges: ``exchangeName``, ``type``, ``createdOn``."""
        return render(self.http.request("GET", f"{BASE}/topicExchanges"), responseType)

    def deleteExchange(self, name: str) -> JSONObject:  # noqa: N802
        """Delete an exchange no rule uses (ConflictError names the rules that do)."""
        return cast("JSONObject", self.http.request("DELETE", _path("topicExchanges", name)))

    def getRoutingKey(self) -> JSONObject:  # noqa: N802
        """``{"routingKey", "DirectExchange"}``: where the tenant's observations enter
        routing (a ``Direct`` rule input names both)."""
        return cast("JSONObject", self.http.request("GET", f"{BASE}/routingKey"))

    # -- rules --------------------------------------------------------------------------
    def directRule(self, name: str, exchange: str, topic: str,  # noqa: N802
                   params: list[dict[str, Any]] | None = None,
                   description: str = "") -> JSONObject:
        """The TCUP rule JSON reading the tenant's direct exchange with its routing key
        (what ``SendRequestExchange`` and ``WebSocketPublish`` send by default, and SOS
        with ``x-routing: mq``) and publishing what passes ``params`` to ``exchange`` with
        ``topic``. Pass it to :meth:`createRule`."""
        key = self.getRoutingKey()
        return {"RuleName": name, "RuleDescription": description, "parallelismFactor": "1",
                "input": {"type": "Direct", "DirectExchange": key["DirectExchange"],
                          "RoutingKey": key["routingKey"], "MQName": ""},
                "params": params or [], "output": {"TopicExchange": exchange, "Topic": topic}}

    def createRule(self, rule_json: dict[str, Any]) -> JSONObject:  # noqa: N802
        """Create a routing rule (TCUP rule JSON, docs/routing.md); the answer's
        ``RuleID`` names it. It runs once :meth:`startRule` starts its channel."""
        return cast("JSONObject", self.http.request("POST", f"{BASE}/routingRules",
                                                  json=rule_json))

    @overload
    def getRules(self, RuleName: str | None = None, RuleDescription: str | None = None,  # noqa: N803
                 responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getRules(self, RuleName: str | None = None, RuleDescription: str | None = None,  # noqa: N803
                 responseType: Literal["dataframe"] = ...) -> pd.DataFrame: ...
    @overload
    def getRules(self, RuleName: str | None = None, RuleDescription: str | None = None,  # noqa: N803
                 responseType: TextType = ...) -> str: ...

    def getRules(self, RuleName: str | None = None, RuleDescription: str | None = None,  # noqa: N802,N803
                 responseType: ResponseType = "json") -> JSON | pd.DataFrame:
        """The tenant's rules (optionally those with a name or description), each with
        its ``Status`` and ``counts`` of messages in, matched and out."""
        params = _drop_none({"RuleName": RuleName, "RuleDescription": RuleDescription})
        return render(self.http.request("GET", f"{BASE}/routingRules", params=params),
                      responseType)

    def getRule(self, id: int) -> JSONObject:  # noqa: N802,A002
        """One rule by ``RuleID``, with its status and counts."""
        return cast("JSONObject", self.http.request("GET", _path("routingRules", str(id))))

    def updateRule(self, id: int, changes: dict[str, Any]) -> JSONObject:  # noqa: N802,A002
        """Change the fields ``changes`` gives of a stopped rule (``input``, ``output`` and
        ``params`` replaced whole); a running one is a ConflictError."""
        return cast("JSONObject", self.http.request("PUT", _path("routingRules", str(id)),
                                                  json=changes))

    def deleteRule(self, id: int) -> JSONObject:  # noqa: N802,A002
        """Delete a rule (its channel stops first)."""
        return cast("JSONObject", self.http.request("DELETE", _path("routingRules", str(id))))

    def startRule(self, id: int) -> JSONObject:  # noqa: N802,A002
        """Start a rule's channel: from now on it routes what its input gets."""
        return cast("JSONObject", self.http.request(
            "POST", f"{_path('routingChannel', str(id))}/start"))

    def stopRule(self, id: int) -> JSONObject:  # noqa: N802,A002
        """Stop a rule's channel."""
        return cast("JSONObject", self.http.request(
            "POST", f"{_path('routingChannel', str(id))}/stop"))

    # -- queues -------------------------------------------------------------------------
    def createQueue(self, name: str, maxLength: int | None = None) -> JSONObject:  # noqa: N802,N803
        """Declare a queue of the tenant; ``maxLength`` keeps at most that many messages
        (the oldest go first)."""
        return cast("JSONObject", self.http.request(
            "POST", f"{BASE}/queues", json=_drop_none({"name": name, "maxLength": maxLength})))

    @overload
    def getQueues(self, responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getQueues(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getQueues(self, responseType: TextType) -> str: ...

    def getQueues(self, responseType: ResponseType = "json") -> JSON | pd.DataFrame:  # noqa: N802,N803
        """The tenant's queues with the number of messages ready in each."""
        return render(self.http.request("GET", f"{BASE}/queues"), responseType)

    def getQueue(self, name: str) -> JSONObject:  # noqa: N802
        """One queue and the number of messages ready in it."""
        return cast("JSONObject", self.http.request("GET", _path("queues", name)))

    def deleteQueue(self, name: str) -> JSONObject:  # noqa: N802
        """Delete a queue and its messages."""
        return cast("JSONObject", self.http.request("DELETE", _path("queues", name)))

    def purgeQueue(self, name: str) -> JSONObject:  # noqa: N802
        """Drop a queue's ready messages (the answer's message says how many)."""
        return cast("JSONObject", self.http.request("POST", f"{_path('queues', name)}/purge"))

    def bindQueue(self, name: str, exchange: str, topic: str = "#") -> JSONObject:  # noqa: N802
        """Route what ``exchange`` gets with a topic matching ``topic`` into queue ``name``."""
        return cast("JSONObject", self.http.request(
            "POST", f"{_path('queues', name)}/bindings",
            json={"exchange": exchange, "topic": topic}))

    @overload
    def getMessages(self, name: str, max: int = 1,  # noqa: A002
                    responseType: Literal["json"] = "json") -> list[Any]: ...
    @overload
    def getMessages(self, name: str, max: int = 1,  # noqa: A002
                    responseType: Literal["dataframe"] = ...) -> pd.DataFrame: ...
    @overload
    def getMessages(self, name: str, max: int = 1,  # noqa: A002
                    responseType: TextType = ...) -> str: ...

    def getMessages(self, name: str, max: int = 1,  # noqa: N802,A002
                    responseType: ResponseType = "json") -> JSON | pd.DataFrame:
        """Take up to ``max`` (1 to MAX_PULL) messages ready in queue ``name`` now; they
        are acknowledged as the platform answers (for delivery that waits for your
        acknowledgement, use :meth:`webSocketSubQueue`)."""
        if isinstance(max, bool) or not isinstance(max, int) or not 1 <= max <= MAX_PULL:
            raise errors.ConfigError(f"max: must be an integer from 1 to {MAX_PULL}, "
                                     f"not {max!r}")
        answer = cast("JSONObject", self.http.request(
            "GET", f"{_path('queues', name)}/messages", params={"max": max}))
        return render(cast("JSON", answer["messages"]), responseType)

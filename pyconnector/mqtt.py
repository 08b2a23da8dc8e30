"""The MQTT connector: SOS observations through an MQTT gateway (TCUP's ``mqttUtils``,
``mqttSubscribe`` and ``mqttPublish``).

TCUP's MQTT gateway is RabbitMQ's MQTT plugin: every MQTT message lands on one topic
exchange (``amq.topic`` unless the broker's ``mqtt.exchange`` says otherwise) with the MQTT
topic as routing key (``/`` becomes ``.``), where routing rules and AMQP subscribers see it
like any observation. The connector speaks plain MQTT 3.1.1 (paho-mqtt), so the same script
runs against RabbitMQ, Mosquitto or any other broker; ``exchange`` names that exchange for
the reader and the results, it does not change what is sent (docs/mqtt.md).

Subscriptions run on paho's network thread: ``sub.main(callback)`` returns once the broker
acknowledged the subscription, and the callback runs on that thread for each message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import ssl
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from . import errors, payloads
from .times import TimeLike

if TYPE_CHECKING:  # paho costs ~80 ms to import: loaded on the first connect
    import paho.mqtt.client as paho
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode
    from typing_extensions import Self

    from .connectors import connectors

log = logging.getLogger(__name__)

DEFAULT_TOPIC: Final = "sos/observations"
DEFAULT_EXCHANGE: Final = "amq.topic"
# Limits on what a user shapes. Topics and exchange names become AMQP routing keys and
# exchange names on the gateway, which AMQP caps at 255 bytes (shortstr).
MAX_TOPIC_BYTES: Final = 255
MAX_EXCHANGE_BYTES: Final = 255
MAX_TOPICS: Final = 64                      # topic filters per subscriber
MAX_PAYLOAD_BYTES: Final = 16 * 1024 * 1024  # as the platform's default max_body_bytes
MAX_CLIENT_ID_CHARS: Final = 128
MAX_CREDENTIAL_BYTES: Final = 65535         # an MQTT string's length prefix
MAX_TIMEOUT_S: Final = 3600.0
MAX_WAIT_COUNT: Final = 10_000_000

_EXCHANGE_NAME = re.compile(r"[A-Za-z0-9_.:\-]+")
# MQTT 3.1.1 CONNACK return codes, which paho reports as MQTT 5 reason codes.
_CONNACK_V311 = {"Unsupported protocol version": 1, "Client identifier not valid": 2,
                 "Server unavailable": 3, "Bad user name or password": 4,
                 "Not authorized": 5}

_TO_ROUTING_KEY = str.maketrans("/.+", "./*")

Callback = Callable[..., object]


class MQTTRefusedError(errors.PyConnectorError):
    """The MQTT broker answered and said no: a refused connection (bad credentials, not
    authorised: ``code`` is the CONNACK return code) or a refused subscription."""

    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


def routing_key(topic: str) -> str:
    """The AMQP routing key RabbitMQ's MQTT plugin gives an MQTT topic (or filter) on the
    gateway's exchange: levels joined by ``.`` instead of ``/`` (a ``.`` becomes ``/``),
    ``+`` becomes ``*``."""
    return topic.translate(_TO_ROUTING_KEY)


# -- the payload a script built last ------------------------------------------------------
class _LastPayload:
    """The observation JSON most recently built by one connector's ``mqtt.payload``:
    what ``pub.main()`` publishes when given nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._body: Any = None

    def set(self, body: Any) -> None:
        with self._lock:
            self._body = body

    def get(self) -> Any:
        with self._lock:
            return self._body


# One slot per connector object, dropped with it.
_SLOTS: weakref.WeakKeyDictionary[object, _LastPayload] = weakref.WeakKeyDictionary()
_SLOTS_LOCK = threading.Lock()


def last_payload(conn: connectors) -> _LastPayload:
    """The last-built-payload slot shared by ``conn``'s MQTT utils and publishers."""
    with _SLOTS_LOCK:
        slot = _SLOTS.get(conn)
        if slot is None:
            slot = _SLOTS[conn] = _LastPayload()
        return slot


class MQTTUtils:
    """Builds the SOS observation JSON devices publish over MQTT (TCUP's ``mqttUtils``).

    >>> mqtt = conn.mqttUtils()
    >>> json = mqtt.payload('s1', {'obs1': 1, 'obs2': 'test_1'}, 'f1')
    """

    def __init__(self, slot: _LastPayload) -> None:
        self._slot = slot

    def payload(self, sensor: str, outputs: dict[str, Any], feature: str | None = None,
                time: TimeLike | None = None) -> dict[str, Any]:
        """A one-record observation body, the shape SOS takes (``sos.data``); it also becomes
        what this connector's ``pub.main()`` publishes when called without a payload."""
        body = payloads.observation(sensor, outputs, feature, time)
        self._slot.set(body)
        return body


# -- checks of what a user passes -----------------------------------------------------------
def _bad(field: str, problem: str) -> errors.ConfigError:
    return errors.ConfigError(f"MQTT {field}: {problem}")


def _check_text(field: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(field, f"must be a non-empty string, not {value!r}")
    if "\x00" in value:
        raise _bad(field, "must not contain NUL")
    if len(value.encode("utf-8")) > limit:
        raise _bad(field, f"is {len(value.encode('utf-8'))} bytes; the limit is {limit}")
    return value


def check_topic(topic: object, *, wildcards: bool, field: str = "topic") -> str:
    """``topic`` if it is a valid MQTT topic (``wildcards=False``: to publish to) or topic
    filter (``+`` for one level, ``#`` for the rest), at most ``MAX_TOPIC_BYTES`` bytes."""
    text = _check_text(field, topic, MAX_TOPIC_BYTES)
    levels = text.split("/")
    for i, level in enumerate(levels):
        if not wildcards and ("+" in level or "#" in level):
            raise _bad(field, f"{text!r} has a wildcard (+ or #): publish to a concrete topic")
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise _bad(field, f"{text!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise _bad(field, f"{text!r}: '+' must be a whole level")
    return text


def _check_number(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _bad(field, f"must be a number from {low:g} to {high:g}, not {value!r}")
    return float(value)


def _check_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(field, f"must be an integer from {low} to {high}, not {value!r}")
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy and pandas scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_payload(payload: Any) -> bytes:
    """The bytes sent for ``payload``: bytes as they are, text as UTF-8, anything else as
    compact JSON; at most ``MAX_PAYLOAD_BYTES``."""
    if isinstance(payload, (bytes, bytearray)):
        data = bytes(payload)
    elif isinstance(payload, str):
        data = payload.encode("utf-8")
    else:
        try:
            data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                              default=_json_default).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise errors.DataError(f"MQTT payload is not JSON serialisable: {exc}") from exc
    if len(data) > MAX_PAYLOAD_BYTES:
        raise errors.DataError(f"MQTT payload is {len(data)} bytes; the limit is "
                               f"{MAX_PAYLOAD_BYTES} (MAX_PAYLOAD_BYTES)")
    return data


def decode_payload(data: bytes | bytearray) -> Any:
    """What a callback gets: the JSON value, or the text if it is not JSON, or the bytes if
    they are not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(data)
    try:
        return json.loads(text)
    except ValueError:
        return text


class _TLSContext(ssl.SSLContext):
    """A client TLS context that remembers the last socket it wrapped: paho leaves the
    socket of a failed handshake to the garbage collector, and we close it ourselves."""

    last: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        self.last = sock
        return sock


# -- the client both sides share ------------------------------------------------------------
class _MQTTClient:
    """One MQTT connection: settings checked up front, errors translated, no thread or
    socket left behind by ``disconnect()``."""

    def __init__(self, host: str, port: int, username: str | None = None,
                 password: str | None = None, exchange: str = DEFAULT_EXCHANGE,
                 certfile: str | os.PathLike[str] | None = None, *,
                 client_id: str | None = None, qos: int = 1, timeout: float = 30.0,
                 keepalive: int = 60) -> None:
        self.host = _check_text("host", host, 253)
        self.port = _check_int("port", port, 1, 65535)
        if username is not None:
            _check_text("username", username, MAX_CREDENTIAL_BYTES)
        if password is not None:
            if username is None:
                raise _bad("password", "given without a username")
            if not isinstance(password, str) or len(password.encode()) > MAX_CREDENTIAL_BYTES:
                raise _bad("password", f"must be a string of at most {MAX_CREDENTIAL_BYTES} bytes")
        self.username = username
        self._password = password
        self.exchange = _check_text("exchange", exchange, MAX_EXCHANGE_BYTES)
        if not _EXCHANGE_NAME.fullmatch(self.exchange):
            raise _bad("exchange", f"{exchange!r}: AMQP exchange names use letters, digits, "
                                   "'-', '_', '.' and ':'")
        self.certfile: str | None = None
        if certfile is not None:
            path = Path(certfile)
            if not path.is_file():
                raise _bad("certfile", f"CA file {str(path)!r} not found")
            self.certfile = str(path)
        self.client_id = (_check_text("client_id", client_id, MAX_CLIENT_ID_CHARS)
                          if client_id is not None else f"pyconnector-{uuid.uuid4().hex[:10]}")
        self.qos = _check_int("qos", qos, 0, 2)
        self.timeout = _check_number("timeout", timeout, 0.001, MAX_TIMEOUT_S)
        self.keepalive = _check_int("keepalive", keepalive, 5, 65535)
        self._client: paho.Client | None = None
        self._connecting = threading.Lock()  # one connection, whichever thread asks first
        self._state = threading.Condition()
        self._connack: ReasonCode | None = None
        self._closed_early: str | None = None
        self._loop_thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        """``host:port``, as errors name the broker."""
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether the connection is up (paho reconnects by itself after a drop)."""
        return self._client is not None and self._client.is_connected()

    def __repr__(self) -> str:
        tls = f", certfile={self.certfile!r}" if self.certfile else ""
        state = "connected" if self.connected else "not connected"
        return (f"<{type(self).__name__} {self.where} exchange={self.exchange!r}{tls} "
                f"{state}>")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.disconnect()

    # paho's callbacks, on its network thread
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, code: ReasonCode,
                    properties: Properties | None) -> None:
        self._loop_thread = threading.current_thread()
        with self._state:
            self._connack = code
            self._state.notify_all()
        if code.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.where, code)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       code: ReasonCode, properties: Properties | None) -> None:
        with self._state:
            if self._connack is None:
                self._closed_early = str(code)
            self._state.notify_all()
        if code.is_failure:
            log.warning("MQTT connection to %s lost (%s); reconnecting", self.where, code)

    def _setup(self, client: paho.Client) -> None:
        """Hook for the subclasses' callbacks."""

    def connect(self) -> Self:
        """Connect (TLS when ``certfile`` is given) and wait for the broker's CONNACK;
        returns at once if connected. Raises ``ConnectError`` (refused, TLS, closed),
        ``TimeoutError`` or :class:`MQTTRefusedError` (bad credentials)."""
        with self._connecting:
            if self._client is None:
                self._client = self._open()
        return self

    def _open(self) -> paho.Client:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=paho.MQTTv311, clean_session=True)
        client.connect_timeout = self.timeout
        client.reconnect_delay_set(1, 30)
        if self.username is not None:
            client.username_pw_set(self.username, self._password)
        tls = self._tls_context() if self.certfile else None
        if tls is not None:
            client.tls_set_context(tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._setup(client)
        with self._state:
            self._connack, self._closed_early = None, None
        try:
            client.connect(self.host, self.port, keepalive=self.keepalive)
        except (OSError, ValueError) as exc:  # ValueError: e.g. a host name IDNA refuses
            if tls is not None and tls.last is not None:
                tls.last.close()
            _release(client)
            raise self._connect_error(exc) from exc
        client.loop_start()
        with self._state:
            self._state.wait_for(lambda: self._connack is not None or self._closed_early,
                                 self.timeout)
            code, closed = self._connack, self._closed_early
        if code is None or code.is_failure:
            self._shutdown(client)
            if code is not None:
                name = code.getName()
                number = _CONNACK_V311.get(name, code.value)
                raise MQTTRefusedError(
                    f"MQTT broker {self.where} refused the connection: {name} (CONNACK code "
                    f"{number}); check the username and password", number, name)
            if closed is not None:
                hint = "" if self.certfile else "; is it a TLS port (pass certfile)?"
                raise errors.ConnectError(f"MQTT broker {self.where} closed the connection "
                                          f"before accepting it ({closed}){hint}")
            raise errors.TimeoutError(f"no CONNACK from MQTT broker {self.where} within "
                                      f"{self.timeout:g} s")
        return client

    def _tls_context(self) -> _TLSContext:
        ctx = _TLSContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the certificate and host name
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_verify_locations(cafile=self.certfile)
        except (ssl.SSLError, ValueError) as exc:
            raise _bad("certfile", f"{self.certfile!r} holds no PEM CA certificate: "
                                   f"{exc}") from exc
        return ctx

    def _connect_error(self, exc: Exception) -> errors.PyConnectorError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return errors.ConnectError(
                f"TLS to MQTT broker {self.where} failed: its certificate does not verify "
                f"with the CA file {self.certfile!r} ({exc.verify_message}); it must be "
                f"signed by that CA and issued for {self.host!r}")
        if isinstance(exc, ssl.SSLError):
            return errors.ConnectError(
                f"TLS handshake with MQTT broker {self.where} failed (CA file "
                f"{self.certfile!r}): {exc.reason or exc}; is it a TLS port?")
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return errors.TimeoutError(f"MQTT broker {self.where} did not answer within "
                                       f"{self.timeout:g} s")
        if isinstance(exc, ConnectionRefusedError):
            return errors.ConnectError(f"MQTT broker {self.where} refused the connection "
                                       "(nothing listening on that port?)")
        if isinstance(exc, socket.gaierror):
            return errors.ConnectError(f"cannot resolve MQTT broker host {self.host!r}: "
                                       f"{exc.strerror}")
        return errors.ConnectError(f"cannot connect to MQTT broker {self.where}: {exc}")

    def _shutdown(self, client: paho.Client) -> None:
        client.disconnect()
        client.loop_stop()  # joins the network thread, unless we are on it
        if threading.current_thread() is not self._loop_thread:
            _release(client)

    def disconnect(self) -> None:
        """Close the connection and stop the network thread (safe to call twice, and from a
        callback)."""
        client, self._client = self._client, None
        if client is not None:
            self._shutdown(client)


def _release(client: paho.Client) -> None:
    # paho keeps a socket pair for waking its loop and closes it only when collected.
    client._reset_sockets()


# -- subscribe ------------------------------------------------------------------------------
class MQTTSubscriber(_MQTTClient):
    """A subscription to topics on an MQTT gateway (TCUP's ``mqttSubscribe``).

    >>> sub = conn.mqttSubscribe(host, 8883, user, password, "amq.topic", "ca.crt")
    >>> sub.main(callback)   # returns once subscribed; callback(payload) per message
    >>> sub.wait(1, timeout=10); sub.stop()
    """

    def __init__(self, host: str, port: int, username: str | None = None,
                 password: str | None = None, exchange: str = DEFAULT_EXCHANGE,
                 certfile: str | os.PathLike[str] | None = None, *,
                 topic: str | Sequence[str] = DEFAULT_TOPIC, **options: Any) -> None:
        super().__init__(host, port, username, password, exchange, certfile, **options)
        if not isinstance(topic, (str, list, tuple)):
            raise _bad("topic", f"must be a topic filter or a list of them, not {topic!r}")
        topics = [topic] if isinstance(topic, str) else list(topic)
        if not topics or len(topics) > MAX_TOPICS:
            raise _bad("topic", f"give 1 to {MAX_TOPICS} topic filters, not {len(topics)}")
        self.topics = [check_topic(t, wildcards=True) for t in topics]
        self.received = 0
        self.failed = 0
        self._callback: Callback | None = None
        self._with_topic = False
        self._stopped = False
        self._subacks: dict[int, list[ReasonCode]] = {}

    @property
    def routing_keys(self) -> list[str]:
        """The topic filters as AMQP binding keys on the gateway's ``exchange``."""
        return [routing_key(t) for t in self.topics]

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" topics={self.topics!r} received={self.received}>"

    def _setup(self, client: paho.Client) -> None:
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, code: ReasonCode,
                    properties: Properties | None) -> None:
        super()._on_connect(client, userdata, flags, code, properties)
        # A clean session forgets subscriptions: renew them after paho reconnects.
        if not code.is_failure and self._client is not None and self._callback is not None:
            self._subscribe(client)

    def _subscribe(self, client: paho.Client) -> int | None:
        from paho.mqtt.enums import MQTTErrorCode

        rc, mid = client.subscribe([(t, self.qos) for t in self.topics])
        return mid if rc == MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      codes: list[ReasonCode], properties: Properties | None) -> None:
        refused = [t for t, c in zip(self.topics, codes) if c.is_failure]
        if refused:
            log.error("MQTT broker %s refused the subscription to %s", self.where, refused)
        with self._state:
            self._subacks[mid] = codes
            while len(self._subacks) > 32:  # those of renewals nobody waits for
                del self._subacks[next(iter(self._subacks))]
            self._state.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        callback = self._callback
        if callback is None:
            return
        payload = decode_payload(msg.payload)
        try:
            if self._with_topic:
                callback(msg.topic, payload)
            else:
                callback(payload)
        except Exception:  # the network thread must live on: log, count, carry on
            self.failed += 1
            log.exception("MQTT callback failed on a message from topic %r", msg.topic)
        with self._state:
            self.received += 1
            self._state.notify_all()

    def main(self, callback: Callback, *, with_topic: bool = False) -> MQTTSubscriber:
        """Subscribe and return once the broker acknowledged (SUBACK): from then on
        ``callback(payload)`` (``callback(topic, payload)`` with ``with_topic=True``) runs
        on the network thread for each message; ``payload`` is the decoded JSON (the text
        if not JSON). Block with :meth:`wait` or :meth:`loop_forever`; end with
        :meth:`stop`."""
        if not callable(callback):
            raise _bad("callback", f"must be callable, not {callback!r}")
        self._callback, self._with_topic, self._stopped = callback, with_topic, False
        self.connect()
        client = self._client
        assert client is not None
        with self._state:  # held so the SUBACK is recorded after we know its mid
            mid = self._subscribe(client)
            acked = mid is not None and self._state.wait_for(lambda: mid in self._subacks,
                                                             self.timeout)
            codes = self._subacks.pop(mid, []) if mid is not None else []
        # Disconnect outside the lock: paho's thread takes it on its way out.
        if mid is None:
            self.disconnect()
            raise errors.ConnectError(f"lost the connection to MQTT broker {self.where} "
                                      "while subscribing")
        if not acked:
            self.disconnect()
            raise errors.TimeoutError(f"no SUBACK from MQTT broker {self.where} within "
                                      f"{self.timeout:g} s for {self.topics}")
        refused = [(t, c) for t, c in zip(self.topics, codes) if c.is_failure]
        if refused:
            self.disconnect()
            code = refused[0][1]
            raise MQTTRefusedError(
                f"MQTT broker {self.where} refused the subscription to "
                f"{[t for t, _ in refused]}: {code.getName()} (SUBACK code {code.value:#04x}); "
                "is the user allowed to read those topics?", code.value, code.getName())
        return self

    def wait(self, n: int = 1, timeout: float | None = None) -> int:
        """Block until ``n`` messages in all have reached the callback since :meth:`main`
        (or the subscriber is stopped); returns how many have. ``TimeoutError`` after
        ``timeout`` seconds (``None``: no limit)."""
        _check_int("n", n, 1, MAX_WAIT_COUNT)
        if timeout is not None:
            _check_number("timeout", timeout, 0, MAX_TIMEOUT_S)
        with self._state:
            if not self._state.wait_for(lambda: self.received >= n or self._stopped, timeout):
                raise errors.TimeoutError(f"{self.received} of {n} MQTT messages on "
                                          f"{self.topics} within {timeout:g} s")
            return self.received

    def loop_forever(self) -> None:
        """Block until :meth:`stop` (from the callback or another thread) or Ctrl-C."""
        try:
            with self._state:
                self._state.wait_for(lambda: self._stopped)
        except KeyboardInterrupt:
            self.stop()

    def stop(self) -> None:
        """End the subscription: disconnect, stop the network thread, wake :meth:`wait`."""
        self.disconnect()

    def disconnect(self) -> None:
        """Same as :meth:`stop`."""
        super().disconnect()
        with self._state:
            self._stopped = True
            self._state.notify_all()


# -- publish --------------------------------------------------------------------------------
class MQTTPublisher(_MQTTClient):
    """Publishes observation JSON to an MQTT gateway (TCUP's ``mqttPublish``), QoS 1 by
    default, waiting for the broker's PUBACK.

    >>> json = mqtt.payload('s1', {'obs1': 1}, 'f1')
    >>> pub = conn.mqttPublish(host, 8883, user, password, "amq.topic", "ca.crt")
    >>> pub.main()   # publishes json, the payload mqtt.payload built last
    >>> pub.disconnect()
    """

    def __init__(self, host: str, port: int, username: str | None = None,
                 password: str | None = None, exchange: str = DEFAULT_EXCHANGE,
                 certfile: str | os.PathLike[str] | None = None, *,
                 topic: str = DEFAULT_TOPIC, retain: bool = False,
                 last_payload: _LastPayload | None = None, **options: Any) -> None:
        super().__init__(host, port, username, password, exchange, certfile, **options)
        self.topic = check_topic(topic, wildcards=False)
        self.retain = bool(retain)
        self._last = last_payload or _LastPayload()

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" topic={self.topic!r}>"

    def main(self, payload: Any = None, *, topic: str | None = None) -> dict[str, Any]:
        """Publish ``payload``, or when none is given the payload this connector's
        ``mqtt.payload(...)`` built last; see :meth:`publish`."""
        if payload is None:
            payload = self._last.get()
            if payload is None:
                raise errors.PyConnectorError(
                    "nothing to publish: build one with mqtt.payload(...) on the same "
                    "connector first, or pass it: pub.main(payload)")
        return self.publish(payload, topic=topic)

    def publish(self, payload: Any, *, topic: str | None = None) -> dict[str, Any]:
        """Publish ``payload`` (a dict/list as JSON, text, or bytes) to ``topic`` (default:
        the publisher's), connecting first if needed, and wait for the PUBACK. Returns
        ``{"published", "topic", "exchange", "routing_key", "qos", "mid", "bytes"}``."""
        target = self.topic if topic is None else check_topic(topic, wildcards=False)
        data = encode_payload(payload)
        self.connect()
        client = self._client
        assert client is not None
        info = client.publish(target, data, qos=self.qos, retain=self.retain)
        try:
            info.wait_for_publish(self.timeout)
        except (RuntimeError, ValueError) as exc:
            raise errors.ConnectError(f"publish to {target!r} on MQTT broker {self.where} "
                                      f"failed: {exc}") from exc
        if not info.is_published():
            raise errors.TimeoutError(f"no PUBACK from MQTT broker {self.where} within "
                                      f"{self.timeout:g} s for topic {target!r}")
        return {"published": True, "topic": target, "exchange": self.exchange,
                "routing_key": routing_key(target), "qos": self.qos, "mid": info.mid,
                "bytes": len(data)}

"""MQTT and Message Routing: a bridge between an MQTT broker and the platform's ``amq.topic``.

Devices publish SOS-format JSON over MQTT; TCUP lands each message on the topic exchange
``amq.topic`` with the MQTT topic as routing key, where rules and subscribers see it like
any observation. On RabbitMQ its own MQTT plugin does that (``--broker amqp://…``, no
bridge needed). The embedded router has no MQTT port, so the platform subscribes to an
MQTT broker (``--mqtt mqtt://host:1883``, Mosquitto for instance) and publishes what
arrives to ``amq.topic`` on its broker, mapped as RabbitMQ maps it (``/`` → ``.``, ``.`` →
``/``), the payload as is. Which tenant a message is for is in its topic: a device
publishes under the tenant's routing key (``<routing key>/plant/temp``), and a rule reading
``amq.topic`` binds under that key (channels.py).

The bridge also works the other way, as RabbitMQ's plugin does: what reaches
``amq.topic`` from the platform (a rule whose output is ``amq.topic``, a publish) is
published to the MQTT broker with the routing key mapped back into a topic, QoS 1, so
MQTT subscribers see rule output (``<routing key>/alerts/hot``). Messages that came from
MQTT (header ``x-mqtt-publish-qos``) are not sent back, and the bridge subscribes with
MQTT 5's *no local*, so the MQTT broker does not hand it its own publishes: no loops.
Outbound messages wait in a bounded subscription (:data:`OUT_BUFFER`, the oldest dropped
when the MQTT broker is away for long) and are published while connected.

Delivery into the platform is at least once and in order: the bridge subscribes to ``#`` with QoS 1 and
acknowledges a message (PUBACK) only once the platform's broker has taken it, so the
MQTT broker redelivers what a crash interrupted, and holds back more than
:data:`IN_FLIGHT` unacknowledged messages (the bridge's memory stays bounded). It keeps an
MQTT 5 session (``clean_start`` off, expiring :data:`SESSION_EXPIRY_SECONDS` after the
bridge went), so messages published while the platform restarts wait in the MQTT broker.
Retained messages replayed on subscribing are skipped: they were bridged when published.
A message the platform's broker refuses (a topic longer than 255 bytes, a body over its
limit) is logged and dropped; one it cannot take now (RabbitMQ down) is tried again.
When the MQTT broker goes, the bridge reconnects, waiting 0.5 s, then twice as long up to
:data:`MAX_RETRY_SECONDS`.

``--mqtt`` takes ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://…?ca=/path/ca.pem``
(TLS, checking the broker's certificate against that CA file, or the system's CAs without
``ca``), with optional ``client_id=`` and ``session_expiry=`` (seconds) in the query. An
in-process broker (``embedded://``) is not offered: amqtt, the maintained Python one, pins
``websockets==15.0.1``, which the platform's WebSocket server cannot share; run Mosquitto
beside the platform instead (docs/mqtt.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from pyconnector.mqtt import routing_key

from ..backends.broker.base import Broker, Message, Subscription
from ..backends.errors import BackendError, BackendUnavailable
from .bodies import SHARED_EXCHANGE

if TYPE_CHECKING:
    import aiomqtt

    from ..settings import Settings

log = logging.getLogger("pyconnector.routing.mqtt")

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
#: unacknowledged QoS 1 messages the MQTT broker may send ahead (MQTT 5 Receive Maximum)
IN_FLIGHT = 100
#: QoS 0 messages held while the platform's broker is slow; past it they are dropped
MAX_QUEUED = 10_000
SESSION_EXPIRY_SECONDS = 3600
#: platform messages waiting to go out to the MQTT broker; past it the oldest are dropped
OUT_BUFFER = 10_000
FROM_MQTT = "x-mqtt-publish-qos"  # the header of messages that came in from MQTT
MAX_SESSION_EXPIRY = 2**32 - 1  # MQTT 5's limit: a session that never expires
MAX_CLIENT_ID = 128
MIN_RETRY_SECONDS, MAX_RETRY_SECONDS = 0.5, 30.0
KEEPALIVE_SECONDS = 30
TIMEOUT_SECONDS = 10.0
SETTING = "mqtt (--mqtt, PYCONNECTOR_MQTT)"


@dataclass(frozen=True)
class Source:
    """The MQTT broker to bridge from, as ``--mqtt`` names it."""

    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    session_expiry: int = SESSION_EXPIRY_SECONDS

    @property
    def where(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context (certificate and host name checked), or None."""
        if not self.tls:
            return None
        try:
            ctx = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"{SETTING}: ca={self.ca_file!r} holds no PEM CA certificate: "
                             f"{exc}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx


def parse(url: str, default_client_id: str = "pyconnector-bridge") -> Source:
    """``--mqtt``'s value as a :class:`Source`; :class:`ValueError` naming the setting and
    what is wrong."""
    if len(url) > 2048:
        raise ValueError(f"{SETTING}: at most 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{SETTING}: {url!r} is not a URL: {exc}") from None
    if parts.scheme == "embedded":
        raise ValueError(f"{SETTING}: embedded:// (an MQTT broker in the platform) is not "
                         "available: run Mosquitto and give --mqtt mqtt://127.0.0.1:1883 "
                         "(docs/mqtt.md)")
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{SETTING}: {url!r}: expected mqtt://host:port or "
                         "mqtts://host:port?ca=/path/ca.pem")
    if not parts.hostname:
        raise ValueError(f"{SETTING}: {url!r} names no host")
    if parts.path not in ("", "/"):
        raise ValueError(f"{SETTING}: {url!r}: an MQTT broker URL has no path")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    known = {"ca", "client_id", "session_expiry"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise ValueError(f"{SETTING}: unknown parameter {unknown[0]!r} (known: "
                         f"{', '.join(sorted(known))})")

    def one(name: str) -> str | None:
        values = query.get(name)
        if values is None:
            return None
        if len(values) > 1 or not values[0]:
            raise ValueError(f"{SETTING}: give {name}= once, with a value")
        return values[0]

    tls = parts.scheme == "mqtts"
    ca = one("ca")
    if ca is not None:
        if not tls:
            raise ValueError(f"{SETTING}: ca= is for mqtts:// (TLS) only")
        if not Path(ca).is_file():
            raise ValueError(f"{SETTING}: CA file {ca!r} not found")
    client_id = one("client_id") or default_client_id
    if len(client_id) > MAX_CLIENT_ID or not client_id.isprintable():
        raise ValueError(f"{SETTING}: client_id must be 1 to {MAX_CLIENT_ID} printable "
                         "characters")
    expiry = one("session_expiry")
    session_expiry = SESSION_EXPIRY_SECONDS
    if expiry is not None:
        if not expiry.isdigit() or int(expiry) > MAX_SESSION_EXPIRY:
            raise ValueError(f"{SETTING}: session_expiry must be a whole number of seconds "
                             f"from 0 to {MAX_SESSION_EXPIRY}, got {expiry!r}")
        session_expiry = int(expiry)
    source = Source(parts.hostname, port or SCHEMES[parts.scheme], tls, ca,
                    unquote(parts.username) if parts.username is not None else None,
                    unquote(parts.password) if parts.password is not None else None,
                    client_id, session_expiry)
    source.tls_context()  # a CA file that is no CA fails now, not at each connect
    return source


class MQTTBridge:
    """Subscribes to ``#`` on ``source`` and publishes every message to ``amq.topic`` on
    ``broker`` (see the module docstring); :meth:`start` runs it in the background,
    :meth:`stop` ends it."""

    def __init__(self, source: Source, broker: Broker) -> None:
        self.source = source
        self.broker = broker
        self.connected = False
        self.bridged = 0  # messages the platform's broker took
        self.refused = 0  # messages it refused (logged and dropped)
        self.skipped = 0  # retained messages replayed on subscribing
        self.sent_out = 0  # platform messages published to the MQTT broker
        self._held: Message | None = None  # the outbound message being published
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the bridge in the background: connect, subscribe, bridge, reconnect."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mqtt-bridge")

    async def stop(self) -> None:
        """Disconnect and end the background task (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _client(self) -> aiomqtt.Client:
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        s = self.source
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = s.session_expiry
        connect.ReceiveMaximum = IN_FLIGHT
        client = aiomqtt.Client(
            s.host, s.port, username=s.username, password=s.password, identifier=s.client_id,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False, properties=connect,
            tls_context=s.tls_context(), keepalive=KEEPALIVE_SECONDS, timeout=TIMEOUT_SECONDS,
            max_queued_incoming_messages=MAX_QUEUED, logger=log)
        # PUBACK once the platform's broker has the message, not when it arrives: aiomqtt
        # has no switch for it, its paho client does.
        client._client.manual_ack_set(True)
        return client

    async def _run(self) -> None:
        import aiomqtt

        # Subscribed before the first connection and kept across reconnections: what the
        # platform publishes while the MQTT broker is away waits here (bounded).
        outbound = await self.broker.subscribe(SHARED_EXCHANGE, "#", OUT_BUFFER)
        async with outbound:
            delay = MIN_RETRY_SECONDS
            while True:
                try:
                    async with self._client() as client:
                        await self._subscribe(client)
                        self.connected, delay = True, MIN_RETRY_SECONDS
                        log.info("MQTT bridge: subscribed to '#' on %s", self.source.where)
                        sending = asyncio.create_task(self._send_out(client, outbound))
                        try:
                            async for message in client.messages:
                                await self._bridge(message)
                                client._client.ack(message.mid, message.qos)
                        finally:
                            sending.cancel()
                            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                                await sending
                except aiomqtt.MqttError as exc:
                    log.warning("MQTT bridge: %s: %s; connecting again in %g s",
                                self.source.where, exc, delay)
                except Exception:  # a bug must not end bridging for good: say it, go on
                    log.exception("MQTT bridge: %s failed; connecting again in %g s",
                                  self.source.where, delay)
                finally:
                    self.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)

    @staticmethod
    async def _subscribe(client: aiomqtt.Client) -> None:
        """``#`` at QoS 1; retained messages were bridged when published (not sent
        again), and the bridge's own publishes are not handed back (no local)."""
        import aiomqtt
        from paho.mqtt.subscribeoptions import SubscribeOptions

        codes = await client.subscribe("#", options=SubscribeOptions(
            qos=1, noLocal=True, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND))
        if any(getattr(c, "is_failure", False) for c in codes):
            raise aiomqtt.MqttError(f"subscription to '#' refused: {codes}")

    async def _send_out(self, client: aiomqtt.Client, outbound: Subscription) -> None:
        """Publish what the platform put on ``amq.topic`` to the MQTT broker (not what
        came from it). The message in hand when the connection drops is kept and sent
        first after reconnecting."""
        while True:
            if self._held is None:
                self._held = await outbound.__anext__()
            message = self._held
            if FROM_MQTT not in message.headers:
                topic = routing_key(message.routing_key)  # the mapping is its own inverse
                if "+" in topic or "#" in topic or not topic:
                    self._refuse(topic, "no MQTT topic for this routing key")
                else:
                    await client.publish(topic, message.body, qos=1)
                    self.sent_out += 1
            self._held = None

    async def _bridge(self, message: aiomqtt.Message) -> None:
        """Publish one MQTT message to ``amq.topic``, trying again while the platform's
        broker is unavailable; refused or not meant for routing, it is logged and dropped."""
        topic = message.topic.value
        if message.retain:  # a replay of a retained message (a broker that ignores
            self.skipped += 1  # retainHandling): bridged when it was published
            return
        if "+" in topic or "#" in topic:  # no broker delivers these; nothing to route
            self._refuse(topic, "a topic with a wildcard")
            return
        headers = {FROM_MQTT: message.qos}
        body: Any = message.payload
        if not isinstance(body, bytes | bytearray):
            body = str(body).encode()
        delay = MIN_RETRY_SECONDS
        while True:
            try:
                await self.broker.publish(SHARED_EXCHANGE, routing_key(topic), body, headers)
                self.bridged += 1
                return
            except BackendUnavailable as exc:
                log.warning("MQTT bridge: the platform's broker is unavailable (%s); "
                            "trying again in %g s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
            except (ValueError, KeyError, BackendError) as exc:
                self._refuse(topic, str(exc))
                return

    def _refuse(self, topic: str, why: str) -> None:
        self.refused += 1
        log.warning("MQTT bridge: message on topic %r dropped: %s", topic[:80], why)


class _NoBridge:
    """What :func:`start` returns when ``--mqtt`` is empty."""

    async def stop(self) -> None:
        """Nothing to stop."""


async def start(settings: Settings, broker: Broker) -> MQTTBridge | _NoBridge:
    """The bridge ``settings.mqtt`` asks for, running (see :class:`MQTTBridge`), or one that
    does nothing when it is empty. :class:`ValueError` naming the setting for a bad URL;
    an MQTT broker that is down is not an error: the bridge keeps trying."""
    if not settings.mqtt:
        return _NoBridge()
    # The same data directory is the same platform: it resumes its MQTT session.
    digest = hashlib.sha256(str(settings.data_path).encode()).hexdigest()[:16]
    bridge = MQTTBridge(parse(settings.mqtt, f"pyconnector-bridge-{digest}"), broker)
    bridge.start()
    return bridge


async def stop(bridge: MQTTBridge | _NoBridge) -> None:
    """Stop the bridge :func:`start` returned."""
    await bridge.stop()

"""MQTT into Message Routing against real ``pyconnector serve`` processes: devices publish
SOS JSON over MQTT under their tenant's routing key, a rule reading ``amq.topic`` filters
it into an exchange, and a WebSocket subscriber sees what passed.

Three ways in: the embedded router bridged from the machine's Mosquitto (``--mqtt``),
RabbitMQ's own MQTT plugin on port 1884 (no bridge), and the bridge from a private
Mosquitto over TLS or killed and started again.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, need_service, start_server, unavailable, wait_for
from websockets.sync.client import connect

pytestmark = pytest.mark.e2e
MR = "/MessageRouting/v2.0"
HOST = "127.0.0.1"
MOSQUITTO_PORT, RABBIT_MQTT_PORT, RABBIT_PORT = 1883, 1884, 5672


# -- a tenant with a rule and an SSE subscriber ----------------------------------------------
class Subscriber:
    """A WebSocket subscription to an exchange's topic (the connector's
    ``webSocketSubTopic`` speaks the same frames)."""

    def __init__(self, server: Server, key: str, exchange: str, topic: str) -> None:
        url = server.url.replace("http://", "ws://") + f"{MR}/ws"
        self.opened = ExitStack()
        self.ws = self.opened.enter_context(connect(url, additional_headers={"x-api-key": key}))
        self.ws.send(json.dumps({"action": "subscribe", "exchange": exchange, "topic": topic}))
        assert json.loads(self.ws.recv(timeout=10))["type"] == "subscribed"

    def next(self, timeout: float = 15) -> Any:
        """The next message; TimeoutError after ``timeout`` seconds."""
        frame = json.loads(self.ws.recv(timeout=timeout))
        assert frame["type"] == "message", frame
        return frame["message"]

    def close(self) -> None:
        self.opened.close()


class Tenant:
    """A new tenant of ``server`` with exchange ``out`` and a running rule: ``amq.topic``
    under ``plant.#`` → ``out``/``alerts``, passing temperatures from 20 to 30, and a
    WebSocket subscriber to ``out``/``alerts``."""

    def __init__(self, server: Server) -> None:
        self.key = server.new_key()
        self.conn = server.connector(self.key)
        self.http = httpx.Client(base_url=server.url, headers={"x-api-key": self.key},
                                 timeout=15)
        self.routing_key = self.http.get(f"{MR}/routingKey").json()["routingKey"]
        self.out = f"out{uuid.uuid4().hex[:8]}"
        r = self.http.post(f"{MR}/topicExchanges", json={"exchangeName": self.out})
        assert r.status_code == 200, r.text
        rule = {"RuleName": "hot plants", "RuleDescription": "MQTT in", "parallelismFactor": 1,
                "input": {"type": "Topic", "TopicExchange": "amq.topic", "Topic": "plant.#"},
                "params": [{"name": "ObservedProperties", "value": [
                    {"name": "temp", "type": "quantity", "value": "20-30", "operator": ""}]}],
                "output": {"TopicExchange": self.out, "Topic": "alerts"}}
        r = self.http.post(f"{MR}/routingRules", json=rule)
        assert r.status_code == 200, r.text
        self.rule_id = r.json()["RuleID"]
        r = self.http.post(f"{MR}/routingChannel/{self.rule_id}/start")
        assert r.json()["Status"] == "Running", r.text
        self.events = Subscriber(server, self.key, self.out, "alerts")

    def observation(self, sensor: str, temp: float) -> dict[str, Any]:
        """The SOS JSON a device sends, built as a script would (``mqtt.payload``)."""
        return self.conn.mqttUtils().payload(sensor, {"temp": temp}, "greenhouse")

    def counts(self) -> dict[str, int]:
        """The rule's counts, once its channel stopped (and so wrote them)."""
        r = self.http.post(f"{MR}/routingChannel/{self.rule_id}/stop")
        assert r.json()["Status"] == "Stopped", r.text
        return self.http.get(f"{MR}/routingRules/{self.rule_id}").json()["counts"]

    def close(self) -> None:
        self.events.close()
        self.http.close()
        self.conn.close()


def _sensor(message: Any) -> str:
    return message["observations"][0]["sensor"]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Factory: ``platform(*serve_args)`` → a running server, stopped at the end."""
    started: list[Server] = []
    tenants: list[Tenant] = []

    def start(*args: str) -> Server:
        started.append(start_server(tmp_path / f"data{len(started)}", "", *args))
        return started[-1]

    start.tenants = tenants  # type: ignore[attr-defined]
    yield start
    for t in tenants:
        t.close()
    for s in started:
        s.stop()


def tenant_of(platform: Callable[..., Server], server: Server) -> Tenant:
    t = Tenant(server)
    platform.tenants.append(t)  # type: ignore[attr-defined]
    return t


def routes_filtered_and_only_its_own(t: Tenant, other: Tenant, port: int,
                                     **credentials: Any) -> None:
    """Another tenant's message, a filtered-out one and a passing one, over one MQTT
    connection in that order: the subscriber's first event is the passing one, and the
    rule saw two messages (the other tenant's never reached it)."""
    with t.conn.mqttPublish(HOST, port, credentials.get("username"),
                            credentials.get("password"), "amq.topic", None,
                            topic=f"{t.routing_key}/plant/temp") as pub:
        pub.main(other.observation("theirs", 25), topic=f"{other.routing_key}/plant/temp")
        pub.main(t.observation("cold", 5))
        passing = t.observation("warm", 25)
        assert pub.main()["routing_key"] == f"{t.routing_key}.plant.temp"  # the one built last
    assert t.events.next() == passing
    assert _sensor(other.events.next()) == "theirs"  # its own rule saw it
    assert t.counts() == {"in": 2, "matched": 1, "out": 1}


# -- 1. the embedded router, bridged from Mosquitto ------------------------------------------
def test_the_bridge_from_mosquitto_routes_each_tenants_messages(
        platform: Callable[..., Server]) -> None:
    need_service("Mosquitto", HOST, MOSQUITTO_PORT)
    # A short session: the shared Mosquitto forgets this bridge soon after the test.
    server = platform("--mqtt", f"mqtt://{HOST}:{MOSQUITTO_PORT}?session_expiry=60")
    t, other = tenant_of(platform, server), tenant_of(platform, server)
    routes_filtered_and_only_its_own(t, other, MOSQUITTO_PORT)


def rule_output_reaches_mqtt_subscribers(t: Tenant, port: int, **credentials: Any) -> None:
    """A rule whose output is ``amq.topic`` publishes under the tenant's routing key, and an
    MQTT subscriber to ``<routing key>/alerts/#`` gets each passing observation once (what
    came in from MQTT is not echoed back to it)."""
    rule = {"RuleName": "to mqtt", "RuleDescription": "MQTT out", "parallelismFactor": 1,
            "input": {"type": "Topic", "TopicExchange": "amq.topic", "Topic": "plant.#"},
            "params": [{"name": "ObservedProperties", "value": [
                {"name": "temp", "type": "quantity", "value": "20-30", "operator": ""}]}],
            "output": {"TopicExchange": "amq.topic", "Topic": "alerts.hot"}}
    r = t.http.post(f"{MR}/routingRules", json=rule)
    assert r.status_code == 200, r.text
    rule_id = r.json()["RuleID"]
    assert t.http.post(f"{MR}/routingChannel/{rule_id}/start").json()["Status"] == "Running"
    got: list[tuple[str, Any]] = []
    user, password = credentials.get("username"), credentials.get("password")
    with t.conn.mqttSubscribe(HOST, port, user, password, "amq.topic", None,
                              topic=f"{t.routing_key}/#") as sub:
        sub.main(lambda topic, payload: got.append((topic, payload)), with_topic=True)
        with t.conn.mqttPublish(HOST, port, user, password, "amq.topic", None,
                                topic=f"{t.routing_key}/plant/temp") as pub:
            pub.main(t.observation("cold", 5))
            passing = t.observation("warm", 25)
            pub.main()
        sub.wait(3, timeout=20)  # the two published, and the rule's output
        assert t.events.next() == passing  # the first rule, as before
        with pytest.raises(Exception, match="within"):
            sub.wait(4, timeout=1.5)  # nothing echoed, nothing twice
    topics = sorted(topic for topic, _ in got)
    assert topics == [f"{t.routing_key}/alerts/hot", f"{t.routing_key}/plant/temp",
                      f"{t.routing_key}/plant/temp"], got
    assert [p for topic, p in got if topic.endswith("alerts/hot")] == [passing]


def test_rule_output_on_amq_topic_reaches_mqtt_subscribers_through_the_bridge(
        platform: Callable[..., Server]) -> None:
    need_service("Mosquitto", HOST, MOSQUITTO_PORT)
    server = platform("--mqtt", f"mqtt://{HOST}:{MOSQUITTO_PORT}?session_expiry=60")
    rule_output_reaches_mqtt_subscribers(tenant_of(platform, server), MOSQUITTO_PORT)


# -- 2. RabbitMQ's MQTT plugin, no bridge ------------------------------------------------------
@pytest.fixture
def mqtt_vhost(rabbit_vhost: str) -> str:
    """A virtual host of the test's own on a RabbitMQ whose MQTT plugin listens."""
    need_service("RabbitMQ's MQTT plugin (.ci/run enables it)", HOST, RABBIT_MQTT_PORT)
    return rabbit_vhost


def test_rabbitmqs_mqtt_plugin_needs_no_bridge(mqtt_vhost: str,
                                               platform: Callable[..., Server]) -> None:
    # mqtt_vhost first: the platform stops before its virtual host goes.
    server = platform("--broker", f"amqp://guest:guest@{HOST}:{RABBIT_PORT}/{mqtt_vhost}")
    t, other = tenant_of(platform, server), tenant_of(platform, server)
    # The plugin's user name "vhost:user" picks the virtual host (the seed's "user1@tcup:user1"
    # has the same shape).
    routes_filtered_and_only_its_own(t, other, RABBIT_MQTT_PORT,
                                     username=f"{mqtt_vhost}:guest", password="guest")


def test_rule_output_on_amq_topic_reaches_mqtt_subscribers_on_rabbitmq(
        mqtt_vhost: str, platform: Callable[..., Server]) -> None:
    server = platform("--broker", f"amqp://guest:guest@{HOST}:{RABBIT_PORT}/{mqtt_vhost}")
    rule_output_reaches_mqtt_subscribers(tenant_of(platform, server), RABBIT_MQTT_PORT,
                                         username=f"{mqtt_vhost}:guest", password="guest")


# -- a private Mosquitto: TLS, restarts ------------------------------------------------------
class PrivateMosquitto:
    """A ``mosquitto`` process on a free port with ``config``; can be killed and started
    again on the same port (tests/client/test_mqtt.py has the connector's twin)."""

    def __init__(self, folder: Path, config: str) -> None:
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                            if Path("/usr/sbin/mosquitto").exists() else None)
        if exe is None:
            unavailable("the mosquitto program is not installed")
        with socket.socket() as s:
            s.bind((HOST, 0))
            self.port = int(s.getsockname()[1])
        self.exe, self.folder = exe, folder
        self.conf = folder / "mosquitto.conf"
        # As root, mosquitto drops to a user that cannot read tmp_path unless told not to.
        self.conf.write_text(f"listener {self.port} {HOST}\npersistence false\n"
                             f"{'user root' if os.geteuid() == 0 else ''}\n{config}")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = self.folder / "mosquitto.log"
        with log.open("ab") as out:
            self.proc = proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stdout=out,
                                                stderr=subprocess.STDOUT)

        def listening() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"mosquitto exited: {log.read_text(errors='replace')}")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for("the private mosquitto to listen", listening)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[Callable[[str], PrivateMosquitto]]:
    started: list[PrivateMosquitto] = []

    def start(config: str) -> PrivateMosquitto:
        folder = tmp_path / f"mosquitto{len(started)}"
        folder.mkdir()
        started.append(PrivateMosquitto(folder, config))
        return started[-1]

    yield start
    for broker in started:
        broker.kill()


# -- 3. TLS ----------------------------------------------------------------------------------
def test_the_bridge_over_tls_with_a_ca_file(platform: Callable[..., Server], tmp_path: Path,
                                            private_mosquitto: Callable[[str], Any]) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert(HOST)
    ca_file, cert_file, key_file = (tmp_path / n for n in ("ca.pem", "server.pem", "key.pem"))
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    broker = private_mosquitto(f"allow_anonymous true\ncafile {ca_file}\n"
                               f"certfile {cert_file}\nkeyfile {key_file}\n")
    server = platform("--mqtt", f"mqtts://{HOST}:{broker.port}?ca={ca_file}")
    t = tenant_of(platform, server)
    with t.conn.mqttPublish(HOST, broker.port, None, None, "amq.topic", str(ca_file),
                            topic=f"{t.routing_key}/plant/greenhouse/temp") as pub:
        pub.main(t.observation("cold", 12))
        pub.main(t.observation("warm", 22))
    assert _sensor(t.events.next()) == "warm"


def test_a_bad_mqtt_url_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    not_a_ca = tmp_path / "ca.pem"
    not_a_ca.write_text("not a certificate")
    for url, words in ((f"mqtts://{HOST}:8883?ca={not_a_ca}", "holds no PEM CA"),
                       ("http://broker:1883", "expected mqtt://host:port"),
                       (f"mqtt://{HOST}:1883?colour=red", "unknown parameter 'colour'"),
                       ("embedded://0.0.0.0:1884", "run Mosquitto")):
        done = subprocess.run([sys.executable, "-m", "pyconnector_server.cli", "serve",
                               "--port", "0", "--data-dir", str(tmp_path / "data"),
                               "--mqtt", url], capture_output=True, text=True, timeout=120)
        assert done.returncode != 0, done.stdout
        assert "(--mqtt, PYCONNECTOR_MQTT)" in done.stderr and words in done.stderr, \
            done.stderr[-2000:]


# -- 4. the MQTT broker restarts ---------------------------------------------------------------
def test_the_bridge_resumes_after_the_mqtt_broker_restarts(
        platform: Callable[..., Server], private_mosquitto: Callable[[str], Any]) -> None:
    broker = private_mosquitto("allow_anonymous true\n")
    server = platform("--mqtt", f"mqtt://{HOST}:{broker.port}")
    t = tenant_of(platform, server)
    # A topic longer than a routing key may be (255 bytes): the platform's broker refuses
    # it; the bridge logs it and goes on with the next message.
    import paho.mqtt.publish

    too_long = f"{t.routing_key}/plant/" + "x" * 300
    paho.mqtt.publish.single(too_long, json.dumps(t.observation("lost", 22)), qos=1,
                             hostname=HOST, port=broker.port)
    with t.conn.mqttPublish(HOST, broker.port, topic=f"{t.routing_key}/plant/temp") as pub:
        pub.main(t.observation("before", 21))
    assert _sensor(t.events.next()) == "before"
    wait_for("the bridge's log of the refused message", lambda: any(
        "dropped: routing key" in line and "too long" in line for line in server.output))

    broker.kill()
    broker.start()  # without persistence: the bridge must subscribe again by itself
    probes = iter(range(1_000))
    got: list[Any] = []

    def a_probe_arrives() -> bool:
        # Until the bridge has subscribed again, Mosquitto drops what it gets: probe.
        with t.conn.mqttPublish(HOST, broker.port, topic=f"{t.routing_key}/plant/t") as p:
            p.main(t.observation(f"probe{next(probes)}", 23))
        try:
            got.append(t.events.next(timeout=0.5))
        except TimeoutError:
            return False
        return True

    wait_for("a message bridged after the restart", a_probe_arrives, timeout=60)
    assert _sensor(got[0]).startswith("probe")
    with t.conn.mqttPublish(HOST, broker.port, topic=f"{t.routing_key}/plant/temp") as pub:
        pub.main(t.observation("after", 24))
    # In order from here: probes still in flight first, then this one.
    while _sensor(event := t.events.next()) != "after":
        assert _sensor(event).startswith("probe")
    assert _sensor(event) == "after"


def test_messages_sent_while_the_platform_is_down_arrive_when_it_is_back(
        tmp_path: Path, private_mosquitto: Callable[[str], Any]) -> None:
    """The bridge's MQTT session outlives the platform: Mosquitto keeps what arrives for
    it meanwhile, and the platform, started again on the same data directory, resumes
    that session and routes it."""
    broker = private_mosquitto("allow_anonymous true\n")
    data, args = tmp_path / "data", ("--mqtt", f"mqtt://{HOST}:{broker.port}")
    server = start_server(data, "", *args)
    try:
        t = Tenant(server)
        for path, body in (("/queues", {"name": "seen"}),
                           ("/queues/seen/bindings", {"exchange": t.out, "topic": "alerts"})):
            assert t.http.post(f"{MR}{path}", json=body).status_code == 200
        with t.conn.mqttPublish(HOST, broker.port, topic=f"{t.routing_key}/plant/t") as pub:
            pub.main(t.observation("before", 21))
        assert _sensor(t.events.next()) == "before"  # the bridge's session exists
        t.close()
    finally:
        server.stop()
    with t.conn.mqttPublish(HOST, broker.port, topic=f"{t.routing_key}/plant/t") as pub:
        pub.main(t.observation("while-down", 22))

    server = start_server(data, "", *args)
    try:
        with httpx.Client(base_url=server.url, headers={"x-api-key": t.key},
                          timeout=15) as c:
            seen: list[Any] = []

            def pulled() -> bool:
                r = c.get(f"{MR}/queues/seen/messages", params={"max": 10})
                seen.extend(r.json()["messages"])
                return bool(seen)

            wait_for("the message sent while the platform was down", pulled, timeout=30)
    finally:
        server.stop()
    assert [_sensor(m) for m in seen] == ["while-down"]

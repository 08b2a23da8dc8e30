"""The MQTT connector against real Mosquitto brokers.

The machine's broker on 127.0.0.1:1883 carries the plain-TCP tests, each on a topic of its
own. TLS and passwords need a broker configured for them: a private ``mosquitto`` process on
a free port, with a CA and a server certificate made at test time (trustme), stopped at the
end.
"""

from __future__ import annotations

import gc
import inspect
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pyconnector
from pyconnector.mqtt import (
    DEFAULT_TOPIC,
    MAX_CLIENT_ID_CHARS,
    MAX_CREDENTIAL_BYTES,
    MAX_EXCHANGE_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_TIMEOUT_S,
    MAX_TOPIC_BYTES,
    MAX_TOPICS,
    MQTTPublisher,
    MQTTRefusedError,
    MQTTSubscriber,
    MQTTUtils,
    routing_key,
)
from tests.conftest import need_service, unavailable, wait_for

ROOT = Path(__file__).resolve().parents[2]
HOST, PORT = "127.0.0.1", 1883
SEED_USER, SEED_PASSWORD = "user1@tcup:user1", "user1"  # the guide's credentials


@pytest.fixture
def conn() -> Iterator[pyconnector.connectors]:
    """A connector; MQTT needs no platform, so its URL points nowhere."""
    with pyconnector.connectors(api_key="unused", URL="http://127.0.0.1:9", timeout=10) as c:
        yield c


@pytest.fixture
def broker() -> tuple[str, int]:
    need_service("Mosquitto", HOST, PORT)
    return HOST, PORT


@pytest.fixture
def topic() -> str:
    """A topic prefix no other test (or run) uses."""
    return f"pyc-test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """``closing(client)``: disconnect it at the end of the test, whatever happens."""
    with ExitStack() as stack:
        def register(client: Any) -> Any:
            stack.callback(client.disconnect)
            return client
        yield register


def open_fds() -> int:
    gc.collect()  # paho closes a client's wake-up socket pair when collected
    return len(os.listdir("/proc/self/fd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# -- the guide's lines --------------------------------------------------------------------
def test_the_guides_lines_in_order(conn: pyconnector.connectors, broker: tuple[str, int],
                                   topic: str, closing: Callable[[Any], Any]) -> None:
    host, port = broker
    received: list[Any] = []

    mqtt = conn.mqttUtils()
    sub = closing(conn.mqttSubscribe(host, port, SEED_USER, SEED_PASSWORD, "amq.topic", None,
                                     topic=topic))

    def callback(json: Any) -> None:
        received.append(json)

    assert sub.main(callback) is sub  # returns: the subscription runs in the background
    json = mqtt.payload('s1', {'obs1': 1, 'obs2': 'test_1'}, 'f1')
    pub = closing(conn.mqttPublish(host, port, SEED_USER, SEED_PASSWORD, "amq.topic", None,
                                   topic=topic))
    result = pub.main()
    pub.disconnect()

    assert result == {"published": True, "topic": topic, "exchange": "amq.topic",
                      "routing_key": topic.replace("/", "."), "qos": 1, "mid": result["mid"],
                      "bytes": result["bytes"]}
    assert sub.wait(1, timeout=10) == 1
    assert received == [json]
    assert json["observations"][0]["sensor"] == "s1"
    assert json["observations"][0]["feature"] == "f1"
    assert json["observations"][0]["record"][0]["output"] == [
        {"name": "obs1", "value": 1}, {"name": "obs2", "value": "test_1"}]
    sub.stop()
    assert not sub.connected


def test_the_default_topics_meet(conn: pyconnector.connectors, broker: tuple[str, int],
                                 closing: Callable[[Any], Any]) -> None:
    # Without topic=, publisher and subscriber use the same documented topic. Other runs
    # may share it, so the test looks for its own sensor.
    sensor = f"s-{uuid.uuid4().hex[:8]}"
    mine: list[Any] = []
    sub = closing(conn.mqttSubscribe(*broker))
    sub.main(lambda p: mine.append(p) if _sensor(p) == sensor else None)
    pub = closing(conn.mqttPublish(*broker))
    assert sub.topics == [DEFAULT_TOPIC] and pub.topic == DEFAULT_TOPIC
    body = conn.mqttUtils().payload(sensor, {"t": 21.5})
    assert pub.main()["topic"] == DEFAULT_TOPIC
    wait_for("the payload on the default topic", lambda: mine == [body])


def _sensor(payload: Any) -> Any:
    try:
        return payload["observations"][0]["sensor"]
    except (TypeError, KeyError, IndexError):
        return None


def test_wildcards_select_topics_in_order(conn: pyconnector.connectors,
                                          broker: tuple[str, int], topic: str,
                                          closing: Callable[[Any], Any]) -> None:
    seen: list[tuple[str, Any]] = []
    sub = closing(conn.mqttSubscribe(*broker, topic=[f"{topic}/+/temp", f"{topic}/b/#"]))
    sub.main(lambda t, p: seen.append((t, p)), with_topic=True)
    assert sub.routing_keys == [f"{topic}.*.temp".replace("/", "."), f"{topic}.b.#".replace("/", ".")]
    pub = closing(conn.mqttPublish(*broker, topic=f"{topic}/a/temp"))
    pub.main({"n": 1})                               # + matches one level
    pub.main({"n": 2}, topic=f"{topic}/x/y/temp")    # + does not match two
    pub.main({"n": 3}, topic=f"{topic}/b/c/d")       # # matches the rest
    pub.main({"n": 4}, topic=f"{topic}/c")           # neither
    pub.main({"n": 5}, topic=f"{topic}/b")           # # matches the parent level too
    sub.wait(3, timeout=10)
    assert seen == [(f"{topic}/a/temp", {"n": 1}), (f"{topic}/b/c/d", {"n": 3}),
                    (f"{topic}/b", {"n": 5})]


def test_an_explicit_payload_text_and_bytes(conn: pyconnector.connectors,
                                            broker: tuple[str, int], topic: str,
                                            closing: Callable[[Any], Any]) -> None:
    got: list[Any] = []
    sub = closing(conn.mqttSubscribe(*broker, topic=topic))
    sub.main(got.append)
    built = conn.mqttUtils().payload("s1", {"obs1": 1}, "f1")
    pub = closing(conn.mqttPublish(*broker, topic=topic))
    explicit = {"observations": [{"sensor": "s2", "record": []}]}
    pub.main(explicit)                  # given: sent instead of the one built
    pub.publish("not json")             # a callback gets the text
    pub.publish(b"\xff\xfe raw")        # ...or the bytes, when not UTF-8
    pub.main()                          # nothing given: the payload built last
    sub.wait(4, timeout=10)
    assert got == [explicit, "not json", b"\xff\xfe raw", built]


def test_the_last_payload_belongs_to_its_connector(conn: pyconnector.connectors,
                                                   broker: tuple[str, int]) -> None:
    conn.mqttUtils().payload("s1", {"obs1": 1})
    with pyconnector.connectors(api_key="unused", URL="http://127.0.0.1:9") as other:
        pub = other.mqttPublish(*broker)
        with pytest.raises(pyconnector.PyConnectorError, match=r"nothing to publish.*mqtt\.payload"):
            pub.main()
        assert not pub.connected  # failed before connecting


# -- blocking and stopping ----------------------------------------------------------------
def test_a_failing_callback_does_not_end_the_subscription(
        conn: pyconnector.connectors, broker: tuple[str, int], topic: str,
        closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture) -> None:
    got: list[Any] = []

    def callback(payload: Any) -> None:
        if payload == 1:
            raise ValueError("a bug in the user's callback")
        got.append(payload)

    sub = closing(conn.mqttSubscribe(*broker, topic=topic))
    sub.main(callback)
    pub = closing(conn.mqttPublish(*broker, topic=topic))
    pub.main(1)
    pub.main(2)
    assert sub.wait(2, timeout=10) == 2
    assert got == [2] and sub.failed == 1
    assert "MQTT callback failed" in caplog.text and "a bug in the user's callback" in caplog.text


def test_stop_from_the_callback_ends_loop_forever(conn: pyconnector.connectors,
                                                  broker: tuple[str, int], topic: str,
                                                  closing: Callable[[Any], Any]) -> None:
    threads = threading.active_count()
    got: list[Any] = []
    sub = closing(conn.mqttSubscribe(*broker, topic=topic))

    def callback(payload: Any) -> None:
        got.append(payload)
        sub.stop()

    sub.main(callback)
    with conn.mqttPublish(*broker, topic=topic) as pub:
        pub.main({"last": True})
    sub.loop_forever()  # returns once the callback stopped it
    assert got == [{"last": True}] and not sub.connected
    wait_for("the network thread to end", lambda: threading.active_count() <= threads)


def test_wait_times_out_naming_the_count(conn: pyconnector.connectors,
                                         broker: tuple[str, int], topic: str,
                                         closing: Callable[[Any], Any]) -> None:
    sub = closing(conn.mqttSubscribe(*broker, topic=topic))
    sub.main(lambda p: None)
    with pytest.raises(pyconnector.TimeoutError, match=r"0 of 1 MQTT messages"):
        sub.wait(1, timeout=0.2)


def test_context_managers_leave_no_thread_or_socket(conn: pyconnector.connectors,
                                                    broker: tuple[str, int],
                                                    topic: str) -> None:
    threads, fds = threading.active_count(), open_fds()
    got: list[Any] = []
    with conn.mqttSubscribe(*broker, topic=topic) as sub, \
            conn.mqttPublish(*broker, topic=topic) as pub:
        sub.main(got.append)
        pub.main({"x": 1})
        sub.wait(1, timeout=10)
        assert threading.active_count() == threads + 2  # one network thread each
    assert got == [{"x": 1}]
    assert not sub.connected and not pub.connected
    assert threading.active_count() == threads
    assert open_fds() == fds


# -- errors ----------------------------------------------------------------------------
def test_a_refused_port_names_host_and_port(conn: pyconnector.connectors) -> None:
    port = free_port()
    fds = open_fds()
    pub = conn.mqttPublish(HOST, port)
    with pytest.raises(pyconnector.ConnectError, match=rf"127\.0\.0\.1:{port} refused"):
        pub.main({"x": 1})
    sub = conn.mqttSubscribe(HOST, port)
    with pytest.raises(pyconnector.ConnectError, match=rf"127\.0\.0\.1:{port} refused"):
        sub.main(print)
    assert open_fds() == fds


def test_a_silent_broker_times_out(conn: pyconnector.connectors) -> None:
    threads, fds = threading.active_count(), open_fds()
    with socket.create_server((HOST, 0)) as silent:  # accepts, never answers CONNECT
        port = silent.getsockname()[1]
        sub = conn.mqttSubscribe(HOST, port, timeout=0.3)
        with pytest.raises(pyconnector.TimeoutError,
                           match=rf"no CONNACK from MQTT broker 127\.0\.0\.1:{port} within 0\.3 s"):
            sub.main(print)
    assert threading.active_count() == threads
    assert open_fds() == fds


@contextmanager
def accepting_but_deaf_broker() -> Iterator[int]:
    """A TCP peer that accepts each MQTT connection (CONNACK) and then answers nothing."""
    server = socket.create_server((HOST, 0))
    peers: list[socket.socket] = []

    def serve() -> None:
        try:
            while True:
                peer, _ = server.accept()
                peers.append(peer)
                peer.recv(1024)                     # the CONNECT
                peer.sendall(b"\x20\x02\x00\x00")  # CONNACK: accepted
        except OSError:
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes accept()
        server.close()
        thread.join(10)
        for peer in peers:
            peer.close()


def test_no_puback_or_suback_times_out(conn: pyconnector.connectors) -> None:
    threads, fds = threading.active_count(), open_fds()
    with accepting_but_deaf_broker() as port:
        with conn.mqttPublish(HOST, port, topic="t/1", timeout=0.3) as pub:
            with pytest.raises(pyconnector.TimeoutError,
                               match=rf"no PUBACK from MQTT broker 127\.0\.0\.1:{port} "
                                     r"within 0\.3 s for topic 't/1'"):
                pub.main({"x": 1})
        sub = conn.mqttSubscribe(HOST, port, topic="t/#", timeout=0.3)
        with pytest.raises(pyconnector.TimeoutError,
                           match=rf"no SUBACK from MQTT broker 127\.0\.0\.1:{port}"):
            sub.main(print)
        assert not sub.connected
    assert threading.active_count() == threads
    assert open_fds() == fds


def test_a_missing_cert_file_is_named(conn: pyconnector.connectors, tmp_path: Path) -> None:
    missing = tmp_path / "intcupiotcom.crt"
    with pytest.raises(pyconnector.ConfigError, match=r"certfile: CA file .*intcupiotcom\.crt.* not found"):
        conn.mqttSubscribe("in.tcupiot.com", 8883, SEED_USER, SEED_PASSWORD, "amq.topic",
                           str(missing))
    not_a_cert = tmp_path / "notes.txt"
    not_a_cert.write_text("hello", encoding="utf-8")
    pub = conn.mqttPublish(HOST, 8883, None, None, "amq.topic", not_a_cert)
    with pytest.raises(pyconnector.ConfigError, match=r"notes\.txt.* holds no PEM CA certificate"):
        pub.connect()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"port": 0}, r"port: must be an integer from 1 to 65535"),
    ({"port": "1883"}, r"port: must be an integer"),
    ({"host": ""}, r"host: must be a non-empty string"),
    ({"exchange": "amq topic"}, r"exchange: 'amq topic': AMQP exchange names"),
    ({"exchange": "x" * 256}, r"exchange: is 256 bytes; the limit is 255"),
    ({"topic": "a/#/b"}, r"topic: 'a/#/b': '#' must be a whole level and the last one"),
    ({"topic": "a/b+"}, r"topic: 'a/b\+': '\+' must be a whole level"),
    ({"topic": "t" * (MAX_TOPIC_BYTES + 1)}, r"topic: is 256 bytes; the limit is 255"),
    ({"topic": [f"t/{i}" for i in range(65)]}, r"topic: give 1 to 64 topic filters, not 65"),
    ({"qos": 3}, r"qos: must be an integer from 0 to 2"),
    ({"timeout": 0}, r"timeout: must be a number"),
    ({"password": "p"}, r"password: given without a username"),
])
def test_bad_settings_name_the_field_and_limit(conn: pyconnector.connectors,
                                               kwargs: dict[str, Any], message: str) -> None:
    args = {"host": HOST, "port": PORT, **kwargs}
    with pytest.raises(pyconnector.ConfigError, match=message):
        conn.mqttSubscribe(**args)


def test_bad_publish_arguments(conn: pyconnector.connectors) -> None:
    pub = conn.mqttPublish(HOST, PORT, topic="a/b")
    with pytest.raises(pyconnector.ConfigError, match=r"has a wildcard"):
        conn.mqttPublish(HOST, PORT, topic="a/+")
    with pytest.raises(pyconnector.ConfigError, match=r"has a wildcard"):
        pub.main({"x": 1}, topic="a/#")
    with pytest.raises(pyconnector.DataError, match=r"not JSON serialisable"):
        pub.main({"x": object()})
    with pytest.raises(pyconnector.ConfigError, match=r"callback: must be callable"):
        conn.mqttSubscribe(HOST, PORT).main("print")  # type: ignore[arg-type]
    assert not pub.connected


def test_routing_keys_as_rabbitmq_names_them() -> None:
    assert routing_key("sos/observations") == "sos.observations"
    assert routing_key("plant/+/temp.c/#") == "plant.*.temp/c.#"


def test_every_public_method_says_what_it_does_and_returns() -> None:
    for cls in (MQTTUtils, MQTTSubscriber, MQTTPublisher):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_"):
                continue
            assert (member.__doc__ or "").strip(), f"{cls.__name__}.{name} has no docstring"
            assert member.__annotations__.get("return") not in (None, "Any"), \
                f"{cls.__name__}.{name} does not say what it returns"


# -- a private broker: TLS and passwords -----------------------------------------------------
@dataclass
class Mosquitto:
    port: int
    ca_file: Path


class PrivateMosquitto:
    """A ``mosquitto`` process with ``config`` plus a listener on a free port; it can be
    killed and started again on the same port."""

    def __init__(self, folder: Path, config: str) -> None:
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                            if Path("/usr/sbin/mosquitto").exists() else None)
        if exe is None:
            unavailable("the mosquitto program is not installed")
        self.exe, self.folder, self.port = exe, folder, free_port()
        self.conf = folder / "mosquitto.conf"
        # `user root`: as root, mosquitto otherwise drops to a user that cannot read tmp_path.
        self.conf.write_text(
            f"listener {self.port} {HOST}\npersistence false\nlog_dest stderr\n"
            f"{'user root' if os.geteuid() == 0 else ''}\n{config}", encoding="utf-8")
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
def private_broker(tmp_path: Path) -> Iterator[Callable[[str], PrivateMosquitto]]:
    """Factory: ``private_broker(config)`` → a running :class:`PrivateMosquitto`."""
    started: list[PrivateMosquitto] = []

    def start(config: str) -> PrivateMosquitto:
        folder = tmp_path / f"mosquitto{len(started)}"
        folder.mkdir()
        started.append(PrivateMosquitto(folder, config))
        return started[-1]

    yield start
    for broker in started:
        broker.kill()


@pytest.fixture
def tls_broker(tmp_path: Path,
               private_broker: Callable[[str], PrivateMosquitto]) -> Mosquitto:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ca.issue_cert(HOST, "localhost")
    ca_file = tmp_path / "ca.crt"
    ca.cert_pem.write_to_path(str(ca_file))
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    server.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    config = (f"allow_anonymous true\ncafile {ca_file}\ncertfile {tmp_path / 'server.crt'}\n"
              f"keyfile {tmp_path / 'server.key'}\n")
    return Mosquitto(private_broker(config).port, ca_file)


def test_tls_with_a_ca_file(conn: pyconnector.connectors, tls_broker: Mosquitto,
                            closing: Callable[[Any], Any], topic: str) -> None:
    got: list[Any] = []
    args = (HOST, tls_broker.port, SEED_USER, SEED_PASSWORD, "amq.topic", str(tls_broker.ca_file))
    sub = closing(conn.mqttSubscribe(*args, topic=topic))
    sub.main(got.append)
    json = conn.mqttUtils().payload("s1", {"obs1": 1, "obs2": "test_1"}, "f1")
    pub = closing(conn.mqttPublish(*args, topic=topic))
    assert pub.main()["published"] is True
    sub.wait(1, timeout=10)
    assert got == [json]
    assert "certfile=" in repr(pub)


def test_tls_refuses_a_broker_another_ca_signed(conn: pyconnector.connectors,
                                                tls_broker: Mosquitto, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    wrong = tmp_path / "other-ca.crt"
    trustme.CA().cert_pem.write_to_path(str(wrong))
    fds = open_fds()
    pub = conn.mqttPublish(HOST, tls_broker.port, None, None, "amq.topic", wrong)
    with pytest.raises(pyconnector.ConnectError,
                       match=rf"TLS to MQTT broker 127\.0\.0\.1:{tls_broker.port} failed: its "
                             r"certificate does not verify with the CA file .*other-ca\.crt"):
        pub.main({"x": 1})
    assert open_fds() == fds  # the failed handshake's socket is closed


def test_plain_tcp_to_a_tls_port_says_so(conn: pyconnector.connectors,
                                         tls_broker: Mosquitto) -> None:
    sub = conn.mqttSubscribe(HOST, tls_broker.port)
    with pytest.raises(pyconnector.ConnectError, match=r"is it a TLS port \(pass certfile\)"):
        sub.main(print)


@pytest.fixture
def password_broker(tmp_path: Path, private_broker: Callable[[str], PrivateMosquitto]) -> int:
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        unavailable("mosquitto_passwd is not installed")
    (tmp_path / "passwords").touch()
    # Mosquitto's password file cannot hold RabbitMQ's "vhost:user" names (':').
    subprocess.run([passwd, "-b", str(tmp_path / "passwords"), "user1", SEED_PASSWORD],
                   check=True, capture_output=True, timeout=30)
    config = f"allow_anonymous false\npassword_file {tmp_path / 'passwords'}\n"
    return private_broker(config).port


def test_credentials_are_checked(conn: pyconnector.connectors, password_broker: int,
                                 closing: Callable[[Any], Any]) -> None:
    good = closing(conn.mqttPublish(HOST, password_broker, "user1", SEED_PASSWORD))
    assert good.main({"x": 1})["published"] is True
    bad = conn.mqttPublish(HOST, password_broker, "user1", "wrong")
    with pytest.raises(MQTTRefusedError,
                       match=rf"127\.0\.0\.1:{password_broker} refused the connection: "
                             r".* \(CONNACK code [45]\)") as caught:
        bad.main({"x": 1})
    assert caught.value.code in (4, 5)
    assert not bad.connected


def test_paho_loads_on_the_first_connection_only() -> None:
    code = ("import sys, pyconnector; c = pyconnector.connectors(api_key='k', URL='http://x');"
            "c.mqttUtils().payload('s1', {'a': 1}); c.mqttPublish('127.0.0.1', 1883);"
            "print('paho' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_a_subscriber_resumes_after_a_broker_restart(
        conn: pyconnector.connectors, private_broker: Callable[[str], PrivateMosquitto],
        closing: Callable[[Any], Any], topic: str) -> None:
    broker = private_broker("allow_anonymous true\n")
    got: list[Any] = []
    sub = closing(conn.mqttSubscribe(HOST, broker.port, topic=topic))
    sub.main(got.append)
    broker.kill()
    wait_for("the subscriber to see the broker go", lambda: not sub.connected)
    broker.start()

    def a_probe_arrives() -> bool:
        # The subscription is renewed asynchronously after paho reconnects: probe until a
        # message published after the restart reaches the callback.
        if sub.connected and not got:
            with conn.mqttPublish(HOST, broker.port, topic=topic) as pub:
                pub.main({"after": "restart"})
        return bool(got)

    wait_for("a message after the restart", a_probe_arrives, timeout=30)
    assert got[0] == {"after": "restart"}


def test_the_docs_state_the_limits_the_code_enforces() -> None:
    doc = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
    limits = dict(re.findall(r"^\| (.+?) \| (.+?) \|$", doc.split("### Limits")[1], re.M))
    assert limits["A topic or topic filter"].startswith(f"{MAX_TOPIC_BYTES} bytes")
    assert limits["`exchange`"] == f"{MAX_EXCHANGE_BYTES} bytes"
    assert limits["Topic filters per subscriber"] == str(MAX_TOPICS)
    assert f"({MAX_PAYLOAD_BYTES:,} bytes)" in limits["A payload"]
    assert limits["`client_id`"] == f"{MAX_CLIENT_ID_CHARS} characters"
    assert limits["`username`, `password`"].startswith(f"{MAX_CREDENTIAL_BYTES:,} bytes")
    assert limits["`timeout`"] == f"up to {MAX_TIMEOUT_S:,.0f} s"
    assert f"Default for both: `{DEFAULT_TOPIC}`" in doc


@pytest.mark.parametrize(("host", "message"), [
    ("broker.invalid", r"cannot resolve MQTT broker host 'broker\.invalid'"),  # RFC 2606
    ("a..b", r"cannot connect to MQTT broker a\.\.b:1883"),  # no empty label in a name
])
def test_a_host_that_cannot_be_reached_is_named(conn: pyconnector.connectors, host: str,
                                                message: str) -> None:
    with pytest.raises(pyconnector.ConnectError, match=message):
        conn.mqttPublish(host, 1883).main({"x": 1})

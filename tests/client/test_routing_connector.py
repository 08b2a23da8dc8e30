"""``conn.srwsUtils()`` against a real ``pyconnector serve`` process: REST and WebSocket
publishing, topic and queue subscriptions, SSE, the admin helpers, and the errors."""

from __future__ import annotations

import gc
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import Server, start_server, wait_for
from test_tls import make_ca_and_server_cert

import pyconnector
from pyconnector.routing import MAX_FRAME_BYTES, srwsUtils

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("error::ResourceWarning")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("routing-connector"))
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    """One tenant for the module (a new one costs a CLI run): tests use names of their
    own and look only at those."""
    return server.new_key()


@pytest.fixture
def conn(server: Server, key: str) -> Iterator[pyconnector.connectors]:
    with server.connector(key, timeout=10) as c:
        yield c


@pytest.fixture
def srws(conn: pyconnector.connectors) -> Iterator[srwsUtils]:
    with conn.srwsUtils() as s:
        yield s


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


# -- publishing and topic subscriptions -------------------------------------------------------
def test_rest_and_websocket_publishes_reach_a_topic_subscriber_in_order(srws: srwsUtils
                                                                        ) -> None:
    ex = _name("ex")
    made = srws.createExchange(ex)
    assert made["exchangeName"] == ex and made["type"] == "topic"
    sub = srws.webSocketSubTopic(ex, "hot.*")
    assert repr(sub).startswith(f"<WebSocketSubscription {ex} 'hot.*' on ws://")
    assert "subscribed, 0 received" in repr(sub)
    assert srws.SendRequestExchange({"n": 1}, exchange=ex, topic="hot.a") == {
        "code": 200, "message": "published"}
    srws.SendRequestExchange({"n": 0}, exchange=ex, topic="cold.a")  # does not match
    ok = srws.WebSocketPublish({"n": 2}, exchange=ex, topic="hot.b")
    assert ok["type"] == "ok" and ok["action"] == "publish"
    assert [sub.get(timeout=10), sub.get(timeout=10)] == [{"n": 1}, {"n": 2}]
    assert sub.last is not None and sub.last["topic"] == "hot.b"
    assert sub.last["dropped"] == 0 and sub.received == 2
    with pytest.raises(pyconnector.TimeoutError, match=r"no message on .* within 0.1 s"):
        sub.get(timeout=0.1)


def test_one_websocket_serves_every_publish_and_reopens_after_close(srws: srwsUtils
                                                                    ) -> None:
    ex = _name("ex")
    srws.createExchange(ex)
    with srws.webSocketSubTopic(ex, "#") as sub:
        srws.WebSocketPublish("first", exchange=ex, topic="t")
        first = srws._ws
        srws.WebSocketPublish("second", exchange=ex, topic="t")
        assert srws._ws is first  # kept, not one per publish
        assert [sub.get(timeout=10), sub.get(timeout=10)] == ["first", "second"]
        srws.WebSocketPublish("third", exchange=ex, topic="t")
        wait_for("the third message to be buffered", lambda: "1 waiting" in repr(sub))
        srws.close()  # ends the publishing socket and the subscription
        assert srws._ws is None
        assert list(sub) == []  # stopped: what was buffered is dropped
    with srws.webSocketSubTopic(ex, "#") as sub:
        srws.WebSocketPublish("fourth", exchange=ex, topic="t")
        assert srws._ws is not first
        assert sub.get(timeout=10) == "fourth"


def test_iteration_blocks_until_stop_from_another_thread(srws: srwsUtils) -> None:
    ex = _name("ex")
    srws.createExchange(ex)
    sub = srws.webSocketSubTopic(ex, "a.#")
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(sub))
    reader.start()
    for n in range(5):
        srws.WebSocketPublish({"n": n}, exchange=ex, topic="a.b.c")
    wait_for("five messages to be iterated", lambda: len(got) == 5)
    assert reader.is_alive()  # still waiting for the next one
    sub.stop()
    reader.join(10)
    assert not reader.is_alive()
    assert got == [{"n": n} for n in range(5)]
    assert "stopped" in repr(sub)
    with pytest.raises(pyconnector.PyConnectorError, match="stopped"):
        sub.get(timeout=1)


def test_stop_inside_the_loop_ends_it(srws: srwsUtils) -> None:
    ex = _name("ex")
    srws.createExchange(ex)
    sub = srws.webSocketSubTopic(ex, "t")
    for n in range(3):
        srws.SendRequestExchange(n, exchange=ex, topic="t")
    got = []
    for message in sub:
        got.append(message)
        if message == 1:
            sub.stop()
    assert got == [0, 1]


def test_a_full_buffer_drops_the_oldest_and_counts_them(srws: srwsUtils) -> None:
    ex = _name("ex")
    srws.createExchange(ex)
    with srws.webSocketSubTopic(ex, "t", buffer=100) as sub:
        for n in range(150):  # nobody takes them meanwhile
            srws.WebSocketPublish(n, exchange=ex, topic="t")
        wait_for("50 messages dropped", lambda: sub.dropped == 50)
        assert [sub.get(timeout=10) for _ in range(100)] == list(range(50, 150))
        assert sub.last is not None and sub.last["dropped"] == 0  # the platform kept up
    with pytest.raises(pyconnector.ConfigError, match="buffer: .* from 100"):
        srws.webSocketSubTopic(ex, "t", buffer=10)


def test_a_batch_published_in_one_frame_arrives_in_order_message_by_message(
        srws: srwsUtils) -> None:
    ex = _name("ex")
    srws.createExchange(ex)
    with srws.webSocketSubTopic(ex, "#", buffer=5000) as sub:
        for start in range(0, 3000, 1000):
            ok = srws.WebSocketPublishBatch(list(range(start, start + 1000)), exchange=ex,
                                            topic="t.b")
            assert ok["type"] == "ok", ok
        got = [sub.get(timeout=10) for _ in range(3000)]
        assert got == list(range(3000)) and sub.dropped == 0
        assert sub.last is not None and sub.last["topic"] == "t.b"
        assert sub.last["exchange"] == ex and sub.last["dropped"] == 0
    for bad in ([], list(range(1001)), "text", None):
        with pytest.raises(pyconnector.ConfigError, match="jsons: .* 1 to 1000"):
            srws.WebSocketPublishBatch(bad, exchange=ex, topic="t")  # type: ignore[arg-type]


def test_the_default_target_is_the_direct_exchange_where_rules_read(srws: srwsUtils) -> None:
    ex = _name("ex")
    srws.createExchange(ex)
    key = srws.getRoutingKey()
    assert key["DirectExchange"] == "Direct.Exchange" and key["routingKey"]
    rule = srws.directRule(_name("r"), ex, "hot", params=[{"name": "sensorID",
                                                           "value": "node*"}])
    assert rule["input"]["RoutingKey"] == key["routingKey"]
    made = srws.createRule(rule)
    rid = made["RuleID"]
    assert made["Status"] == "Created"
    assert srws.startRule(rid)["Status"] == "Running"
    with srws.webSocketSubTopic(ex, "hot") as sub:
        srws.SendRequestExchange(srws.data("other", {"t": 1}, "f1"))  # filtered out
        srws.SendRequestExchange(srws.data("node1", {"t": 2}, "f1"))
        srws.WebSocketPublish(srws.data("node2", {"t": 3}, "f1"))
        got = [sub.get(timeout=10), sub.get(timeout=10)]
    assert [(m["observations"][0]["sensor"], m["observations"][0]["record"][0]["output"])
            for m in got] == [("node1", [{"name": "t", "value": 2}]),
                              ("node2", [{"name": "t", "value": 3}])]
    wait_for("the rule's counts", lambda: srws.getRule(rid)["counts"]["out"] == 2)
    assert srws.getRule(rid)["counts"]["in"] == 3


# -- the admin helpers --------------------------------------------------------------------------
def test_exchanges_and_rules_through_the_helpers(srws: srwsUtils) -> None:
    ex = _name("ex")
    srws.createExchange(ex, type="fanout")
    exchanges = srws.getExchanges()
    assert [(e["exchangeName"], e["type"]) for e in exchanges if e["exchangeName"] == ex] == [
        (ex, "fanout")]
    frame = srws.getExchanges(responseType="dataframe")
    assert isinstance(frame, pd.DataFrame) and ex in frame["exchangeName"].tolist()
    assert ex in srws.getExchanges(responseType="table")

    name = _name("rule")
    rid = srws.createRule(srws.directRule(name, ex, "out", description="first"))["RuleID"]
    assert rid in [r["RuleID"] for r in srws.getRules()]
    assert [r["RuleID"] for r in srws.getRules(RuleName=name)] == [rid]
    assert srws.getRules(RuleName=name)[0]["RuleDescription"] == "first"
    assert srws.getRules(RuleName="nothing-like-it") == []
    rules = srws.getRules(RuleName=name, responseType="dataframe")
    assert rules["RuleName"].tolist() == [name]
    assert srws.updateRule(rid, {"RuleDescription": "second"})["RuleDescription"] == "second"
    assert srws.startRule(rid)["Status"] == "Running"
    with pytest.raises(pyconnector.ConflictError) as running:
        srws.updateRule(rid, {"RuleDescription": "third"})
    assert running.value.method == "PUT" and running.value.url is not None
    assert srws.stopRule(rid)["Status"] == "Stopped"
    with pytest.raises(pyconnector.ConflictError, match=name):
        srws.deleteExchange(ex)  # the rule still publishes to it
    assert srws.deleteRule(rid)["code"] == 200
    with pytest.raises(pyconnector.NotFoundError):
        srws.getRule(rid)
    assert srws.deleteExchange(ex)["code"] == 200
    assert ex not in [e["exchangeName"] for e in srws.getExchanges()]


def test_queues_through_the_helpers(srws: srwsUtils) -> None:
    ex, q = _name("ex"), _name("q")
    srws.createExchange(ex)
    made = srws.createQueue(q, maxLength=10)
    assert made["name"] == q and made["maxLength"] == 10 and made["messages"] == 0
    assert "bound" in srws.bindQueue(q, ex, "jobs.*")["message"]
    for n in range(3):
        srws.SendRequestExchange({"n": n}, exchange=ex, topic="jobs.new")
    srws.SendRequestExchange({"n": 9}, exchange=ex, topic="other")
    srws.SendRequestExchange({"n": 3}, queue=q)  # straight to the queue
    wait_for("four messages in the queue", lambda: srws.getQueue(q)["messages"] == 4)
    assert [(x["name"], x["messages"]) for x in srws.getQueues() if x["name"] == q] == [(q, 4)]
    queues = srws.getQueues(responseType="dataframe")
    assert queues.loc[queues["name"] == q, "messages"].tolist() == [4]
    assert srws.getMessages(q, max=2) == [{"n": 0}, {"n": 1}]
    taken = srws.getMessages(q, max=1, responseType="dataframe")
    assert taken["n"].tolist() == [2]
    assert srws.purgeQueue(q)["message"] == "1 message(s) purged"
    assert srws.getQueue(q)["messages"] == 0
    assert srws.getMessages(q, max=5) == []
    assert srws.deleteQueue(q)["code"] == 200
    assert q not in [x["name"] for x in srws.getQueues()]
    with pytest.raises(pyconnector.ConfigError, match=r"max: .* 1 to 1000"):
        srws.getMessages(q, max=1001)


# -- queue subscriptions -------------------------------------------------------------------------
def test_a_queue_subscription_keeps_what_it_did_not_acknowledge(srws: srwsUtils) -> None:
    q = _name("q")
    srws.createQueue(q)
    for n in range(2):
        srws.WebSocketPublish({"n": n}, queue=q)
    with srws.webSocketSubQueue(q) as sub:
        assert sub.get(timeout=10) == {"n": 0}
        sub.ack()
        assert sub.get(timeout=10) == {"n": 1}
        assert sub.last is not None and sub.last["tag"] == 2
        # not acknowledged: back to the queue when the subscription stops
    wait_for("the unacknowledged message to return",
             lambda: srws.getQueue(q)["messages"] == 1)
    with srws.webSocketSubQueue(q, autoAck=True) as sub:
        assert sub.get(timeout=10) == {"n": 1}
        assert sub.last is not None and sub.last["redelivered"] is True
        srws.SendRequestExchange({"n": 2}, queue=q)
        assert sub.get(timeout=10) == {"n": 2}
    assert srws.getMessages(q, max=5) == []  # both acknowledged as taken


def test_nack_gives_a_message_back_to_the_queue(srws: srwsUtils) -> None:
    q = _name("q")
    srws.createQueue(q)
    srws.SendRequestExchange("again", queue=q)
    with srws.webSocketSubQueue(q) as sub:
        assert sub.get(timeout=10) == "again"
        assert sub.last is not None and sub.last["redelivered"] is False
        sub.nack()
        assert sub.get(timeout=10) == "again"  # redelivered, here the only consumer
        assert sub.last["redelivered"] is True and sub.last["tag"] == 2
        sub.ack()
    assert srws.getMessages(q, max=5) == []


def test_ack_errors_are_clear(srws: srwsUtils) -> None:
    ex, q = _name("ex"), _name("q")
    srws.createExchange(ex)
    srws.createQueue(q)
    with srws.webSocketSubTopic(ex) as sub, \
            pytest.raises(pyconnector.PyConnectorError, match="only queue messages"):
        sub.ack()
    with srws.webSocketSubQueue(q) as sub:
        with pytest.raises(pyconnector.PyConnectorError, match="no message taken"):
            sub.ack()
        sub.ack(99)  # no such delivery: the platform's error frame comes with the next get
        with pytest.raises(pyconnector.NotFoundError, match="frame.tag"):
            sub.get(timeout=10)


# -- SSE -------------------------------------------------------------------------------------------
def test_sse_iterates_an_exchanges_topic_and_a_queue(srws: srwsUtils) -> None:
    ex, q = _name("ex"), _name("q")
    srws.createExchange(ex)
    srws.createQueue(q)
    with srws.sseSubscribe(exchange=ex, topic="hot.*") as events:
        srws.SendRequestExchange({"n": 0}, exchange=ex, topic="cold.a")
        srws.SendRequestExchange({"n": 1}, exchange=ex, topic="hot.a")
        srws.WebSocketPublish("text", exchange=ex, topic="hot.b")
        got = []
        for message in events:
            got.append(message)
            if len(got) == 2:
                break
    assert got == [{"n": 1}, "text"]
    assert events.last_id == "2" and events.received == 2
    srws.SendRequestExchange([1, 2], queue=q)
    with srws.sseSubscribe(queue=q) as events:
        assert next(iter(events)) == [1, 2]
    with pytest.raises(pyconnector.ConfigError, match="an exchange .* or a queue"):
        srws.sseSubscribe()


# -- errors -------------------------------------------------------------------------------------
def test_an_unknown_exchange_or_queue_is_not_found_everywhere(srws: srwsUtils) -> None:
    with pytest.raises(pyconnector.NotFoundError, match="'nope'") as rest:
        srws.SendRequestExchange({"n": 1}, exchange="nope", topic="t")
    assert rest.value.method == "POST" and rest.value.url.endswith("/MessageRouting/v2.0/publish")
    with pytest.raises(pyconnector.NotFoundError, match="'nope'") as ws:
        srws.WebSocketPublish({"n": 1}, exchange="nope", topic="t")
    assert ws.value.url is not None and ws.value.url.endswith("/MessageRouting/v2.0/ws")
    assert srws.WebSocketPublish({"n": 1})["type"] == "ok"  # the socket is still usable
    with pytest.raises(pyconnector.NotFoundError, match="exchange 'nope' not found"):
        srws.webSocketSubTopic("nope", "t")
    with pytest.raises(pyconnector.NotFoundError, match="queue 'nowhere' not found"):
        srws.webSocketSubQueue("nowhere")
    with pytest.raises(pyconnector.NotFoundError, match="'nope'"):
        srws.sseSubscribe(exchange="nope")
    with pytest.raises(pyconnector.NotFoundError, match="'nope'"):
        srws.deleteExchange("nope")
    with pytest.raises(pyconnector.BadRequestError, match="topic"):
        srws.WebSocketPublish({"n": 1}, topic="has space")
    with pytest.raises(pyconnector.ConfigError, match="not both"):
        srws.SendRequestExchange({}, exchange="x", queue="q")


def test_a_bad_key_is_an_authentication_error_on_every_path(server: Server) -> None:
    with pyconnector.connectors(api_key="not-a-key", URL=server.url, timeout=10) as bad, \
            bad.srwsUtils() as srws:
        with pytest.raises(pyconnector.AuthenticationError, match="unknown API key"):
            srws.SendRequestExchange({"n": 1})
        with pytest.raises(pyconnector.AuthenticationError, match="unknown API key") as ws:
            srws.WebSocketPublish({"n": 1})
        assert ws.value.status == 401 and ws.value.url is not None
        with pytest.raises(pyconnector.AuthenticationError, match="unknown API key"):
            srws.webSocketSubTopic("ex1", "test")
        with pytest.raises(pyconnector.AuthenticationError, match="unknown API key"):
            srws.sseSubscribe(exchange="ex1")


def test_a_jwt_tenants_websocket_needs_the_token(server: Server) -> None:
    tenant = _name("jwt")
    key = server.new_key(tenant)
    secret = subprocess.run(
        [sys.executable, "-m", "pyconnector_server.cli", "jwtkey", "create", "--data-dir",
         str(server.data_dir), "--tenant", tenant],
        capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    with pyconnector.connectors(api_key=key, URL=server.url, timeout=10) as plain, \
            plain.srwsUtils() as srws, \
            pytest.raises(pyconnector.AuthenticationError, match="JWT"):
        srws.WebSocketPublish({"n": 1})
    with pyconnector.connectors(api_key=key, URL=server.url, jwt_key=secret,
                                timeout=10) as c, c.srwsUtils() as srws:
        srws.createExchange("ex1")
        with srws.webSocketSubTopic("ex1", "t") as sub:
            assert srws.WebSocketPublish({"n": 1}, exchange="ex1", topic="t")["type"] == "ok"
            assert sub.get(timeout=10) == {"n": 1}


def test_a_frame_over_the_platforms_limit_is_refused_before_sending(srws: srwsUtils) -> None:
    with pytest.raises(pyconnector.PayloadTooLargeError, match=str(MAX_FRAME_BYTES)):
        srws.WebSocketPublish("x" * MAX_FRAME_BYTES)
    assert srws.WebSocketPublish("small")["type"] == "ok"


def test_no_platform_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once closed
    with pyconnector.connectors(api_key="k", URL=f"http://127.0.0.1:{port}", timeout=5,
                                retries=0) as c, c.srwsUtils() as srws:
        with pytest.raises(pyconnector.ConnectError, match=f"127.0.0.1:{port}"):
            srws.WebSocketPublish({"n": 1})
        with pytest.raises(pyconnector.ConnectError, match=f"127.0.0.1:{port}"):
            srws.webSocketSubTopic("ex1", "test")


# -- TLS ---------------------------------------------------------------------------------------
class TLSProxy:
    """TLS in front of the platform on loopback (``pyconnector serve`` speaks plain HTTP;
    production puts a proxy in front the same way): one thread per connection, copying
    bytes both ways with one ``select`` loop, so the TLS socket is used by one thread."""

    def __init__(self, backend: tuple[str, int], cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend = backend
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.done = threading.Event()
        self.accepter = threading.Thread(target=self._accept)
        self.accepter.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.2)  # closing a socket does not wake its accept()
        while not self.done.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(10)
            thread = threading.Thread(target=self._serve, args=(raw,))
            self.threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except OSError:  # the client refused our certificate
            raw.close()
            return
        with tls, socket.create_connection(self.backend) as back:
            while not self.done.is_set():
                ready = [tls] if tls.pending() else select.select([tls, back], [], [], 0.2)[0]
                try:
                    for source, sink in ((tls, back), (back, tls)):
                        if source in ready:
                            data = source.recv(65536)
                            if not data:
                                return
                            sink.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self.done.set()
        self.accepter.join()
        self.listener.close()
        for thread in self.threads:
            thread.join()


@pytest.fixture
def tls_url(server: Server, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``(https URL, CA file)`` of the platform behind TLS with a private CA."""
    ca_pem, cert_pem, key_pem = make_ca_and_server_cert(tmp_path)
    host, port = server.url.split("//")[1].split(":")
    proxy = TLSProxy((host, int(port)), cert_pem, key_pem)
    try:
        yield f"https://127.0.0.1:{proxy.port}", ca_pem
    finally:
        proxy.close()


def test_wss_with_the_configs_ca_file(tls_url: tuple[str, Path], key: str) -> None:
    url, ca_pem = tls_url
    ex = _name("ex")
    with pyconnector.connectors(api_key=key, URL=url, verify=str(ca_pem), timeout=10) as c, \
            c.srwsUtils() as srws:
        srws.createExchange(ex)
        sub = srws.webSocketSubTopic(ex, "t")
        assert " on wss://127.0.0.1:" in repr(sub)
        assert srws.WebSocketPublish({"over": "tls"}, exchange=ex, topic="t")["type"] == "ok"
        assert sub.get(timeout=10) == {"over": "tls"}
        with srws.sseSubscribe(exchange=ex, topic="t") as events:
            srws.SendRequestExchange("sse", exchange=ex, topic="t")
            assert next(iter(events)) == "sse"
    with pyconnector.connectors(api_key=key, URL=url, verify=False, timeout=10) as c, \
            c.srwsUtils() as srws:
        assert srws.WebSocketPublish({"n": 1}, exchange=ex, topic="t")["type"] == "ok"


def test_wss_refuses_a_certificate_the_default_cas_do_not_trust(tls_url: tuple[str, Path],
                                                               key: str) -> None:
    url, _ = tls_url
    with pyconnector.connectors(api_key=key, URL=url, timeout=10, retries=0) as c, \
            c.srwsUtils() as srws:
        with pytest.raises(pyconnector.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            srws.WebSocketPublish({"n": 1})
        with pytest.raises(pyconnector.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            srws.webSocketSubTopic("ex1", "t")


# -- resources ---------------------------------------------------------------------------------
def test_close_leaves_no_thread_or_socket(conn: pyconnector.connectors) -> None:
    srws = conn.srwsUtils()
    ex = _name("ex")
    srws.createExchange(ex)
    srws.WebSocketPublish("warm up")  # the pooled HTTP connection and the socket exist
    srws.close()
    before, fds = set(threading.enumerate()), open_fds()
    subs = [srws.webSocketSubTopic(ex, "#") for _ in range(3)]
    srws.WebSocketPublish("one", exchange=ex, topic="t")
    assert [s.get(timeout=10) for s in subs] == ["one"] * 3
    with srws.sseSubscribe(exchange=ex) as events:
        srws.WebSocketPublish("two", exchange=ex, topic="t")
        assert next(iter(events)) == "two"
    assert len(set(threading.enumerate()) - before) >= 3  # a reader per subscription
    srws.close()  # stops the subscriptions made through it
    wait_for("the subscriptions' threads to end",
             lambda: not set(threading.enumerate()) - before)
    assert open_fds() <= fds  # the HTTP pool may have let a connection go too

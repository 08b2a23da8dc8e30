"""Message Routing's streams against a real ``pyconnector serve``: Server-Sent Events from
an exchange's topic and from a queue, and a WebSocket, over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from conftest import Server, start_server, wait_for
from websockets.sync.client import connect

pytestmark = pytest.mark.e2e
MR = "/MessageRouting/v2.0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("routing-streams"))
    try:
        yield s
    finally:
        s.stop()


def _events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """SSE events (comment lines skipped) as {field: value}."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            event[field] = value


def test_sse_streams_an_exchanges_topic(server: Server) -> None:
    headers = {"x-api-key": server.new_key()}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as c:
        assert c.post(f"{MR}/topicExchanges", json={"exchangeName": "alerts"}).status_code == 200
        with c.stream("GET", f"{MR}/sse", params={"exchange": "alerts", "topic": "hot.*"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            assert next(lines) == ": subscribed to alerts hot.*"  # the subscription is live
            for topic, n in (("cold.a", 0), ("hot.a", 1), ("hot.b", 2)):
                c.post(f"{MR}/publish", json={"exchange": "alerts", "topic": topic,
                                               "message": {"n": n}})
            events = _events(lines)
            got = [next(events), next(events)]
    assert [(e["event"], e["id"], json.loads(e["data"])) for e in got] == [
        ("message", "1", {"n": 1}), ("message", "2", {"n": 2})]


def test_sse_consumes_a_queue_until_the_client_goes(server: Server) -> None:
    """The stream takes the queue's messages as it writes them, and stops taking them
    when the client goes: a message published afterwards waits in the queue."""
    headers = {"x-api-key": server.new_key()}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as c:
        c.post(f"{MR}/queues", json={"name": "jobs"})
        for n in range(2):
            c.post(f"{MR}/publish", json={"queue": "jobs", "message": n})
        with c.stream("GET", f"{MR}/sse", params={"queue": "jobs"}) as r:
            events = _events(r.iter_lines())
            assert [json.loads(next(events)["data"]) for _ in range(2)] == [0, 1]
        wait_for("the stream's consumer to close",
                 lambda: c.post(f"{MR}/publish", json={"queue": "jobs", "message": "later"})
                 and c.get(f"{MR}/queues/jobs").json()["messages"] >= 1)
        assert c.get(f"{MR}/queues/jobs/messages", params={"max": 5}).json()[
            "messages"][0] == "later"


def test_sse_and_websocket_refuse_a_missing_key(server: Server) -> None:
    r = httpx.get(f"{server.url}{MR}/sse", params={"exchange": "x"}, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == 401
    ws_url = server.url.replace("http://", "ws://") + f"{MR}/ws"
    with connect(ws_url) as ws:
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=10)
    assert getattr(closed.value, "rcvd", None) is not None
    assert closed.value.rcvd.code == 1008


def test_a_websocket_publishes_and_subscribes_over_a_real_socket(server: Server) -> None:
    key = server.new_key()
    ws_url = server.url.replace("http://", "ws://") + f"{MR}/ws"
    httpx.post(f"{server.url}{MR}/topicExchanges", json={"exchangeName": "ex1"},
               headers={"x-api-key": key}, timeout=10)
    with connect(ws_url, additional_headers={"x-api-key": key}) as ws:
        ws.send(json.dumps({"action": "subscribe", "exchange": "ex1", "topic": "test"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        for n in range(100):  # every tenth asks for an answer (it has a ref)
            ref = {"ref": f"p{n}"} if n % 10 == 0 else {}
            ws.send(json.dumps({"action": "publish", "exchange": "ex1", "topic": "test",
                                "message": {"n": n}, **ref}))
        frames = [json.loads(ws.recv(timeout=10)) for _ in range(110)]
    messages = [f["message"]["n"] for f in frames if f["type"] == "message"]
    assert messages == list(range(100))  # every one, in order
    assert [f["ref"] for f in frames if f["type"] == "ok"] == [f"p{n}" for n in range(0, 100, 10)]

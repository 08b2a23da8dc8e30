"""Clients that go away from a platform on RabbitMQ leave nothing behind there: an SSE
stream or a WebSocket subscription closed by its client (politely or by dropping the
socket) deletes its private queue, and a queue's stream stops consuming."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, rabbit_url, rabbitmqctl, start_server, wait_for
from websockets.sync.client import connect

pytestmark = pytest.mark.e2e
MR = "/MessageRouting/v2.0"


@pytest.fixture
def platform(rabbit_vhost: str, tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "data", "", "--broker", rabbit_url(rabbit_vhost))
    yield server
    server.stop()


def private_queues(vhost: str) -> list[str]:
    """The subscriptions' queues on the virtual host (``pyc.sub.*``)."""
    listing = rabbitmqctl("--no-table-headers", "list_queues", "-p", vhost, "name")
    return [q for q in listing.split() if q.startswith("pyc.sub.")]


def test_streams_closed_by_their_clients_leave_no_queue(platform: Server,
                                                        rabbit_vhost: str) -> None:
    key = platform.new_key()
    headers = {"x-api-key": key}
    ex = f"ex{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=platform.url, headers=headers, timeout=15) as http:
        assert http.post(f"{MR}/topicExchanges", json={"exchangeName": ex}).status_code == 200
        # An SSE stream read once and closed by the client.
        with http.stream("GET", f"{MR}/sse", params={"exchange": ex, "topic": "#"}) as sse:
            lines = (line for line in sse.iter_lines() if line)
            assert next(lines).startswith(": subscribed")
            assert len(private_queues(rabbit_vhost)) == 1
            http.post(f"{MR}/publish", json={"exchange": ex, "topic": "t", "message": 1})
            assert [next(lines) for _ in range(3)] == ["event: message", "id: 1", "data: 1"]
        wait_for("the SSE stream's queue to go", lambda: private_queues(rabbit_vhost) == [],
                 timeout=30)
        # A WebSocket subscription whose client drops the TCP connection without a close.
        with connect(platform.url.replace("http://", "ws://") + f"{MR}/ws",
                     additional_headers=headers) as ws:
            ws.send(json.dumps({"action": "subscribe", "exchange": ex, "topic": "#"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
            assert len(private_queues(rabbit_vhost)) == 1
            ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection ends
        wait_for("the WebSocket subscription's queue to go",
                 lambda: private_queues(rabbit_vhost) == [], timeout=30)


def test_a_queue_stream_stops_consuming_when_its_client_goes(platform: Server,
                                                             rabbit_vhost: str) -> None:
    """SSE acknowledges a message once its event is written to the connection (the
    client has no way to acknowledge): when the client goes, the stream's consumer goes
    with it, and what is published afterwards waits in the queue for the next reader."""
    key = platform.new_key()
    q = f"q{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=platform.url, headers={"x-api-key": key}, timeout=15) as http:
        assert http.post(f"{MR}/queues", json={"name": q}).status_code == 200
        http.post(f"{MR}/publish", json={"queue": q, "message": 0})
        with http.stream("GET", f"{MR}/sse", params={"queue": q}) as sse:
            lines = (line for line in sse.iter_lines() if line)
            assert next(lines).startswith(": consuming")
            assert [next(lines) for _ in range(3)] == ["event: message", "id: 1", "data: 0"]
            assert list(consumers(rabbit_vhost).values()) == [1]  # the tenant's queue
        wait_for("the stream's consumer to go",
                 lambda: list(consumers(rabbit_vhost).values()) == [0], timeout=30)
        for i in (1, 2):
            http.post(f"{MR}/publish", json={"queue": q, "message": i})
        assert http.get(f"{MR}/queues/{q}").json()["messages"] == 2
        assert http.get(f"{MR}/queues/{q}/messages", params={"max": 10}).json()[
            "messages"] == [1, 2]


def consumers(vhost: str) -> dict[str, int]:
    """Consumers per queue on the virtual host (the subscriptions' own queues left out)."""
    listing = rabbitmqctl("--no-table-headers", "list_queues", "-p", vhost, "name", "consumers")
    pairs = (line.split("\t") for line in listing.splitlines() if line.strip())
    return {name: int(n) for name, n in pairs if not name.startswith("pyc.sub.")}

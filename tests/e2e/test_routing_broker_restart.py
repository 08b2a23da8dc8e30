"""RabbitMQ going away under a running platform while a WebSocket subscriber and a
queue consumer (the connector's) are attached: both go on without the client doing
anything, and every message published to the queue is acknowledged, none lost.

RabbitMQ closes the platform's connections (``rabbitmqctl close_connection`` on a
virtual host of the test's own, so other users of the shared RabbitMQ do not notice);
under ``CI`` (alone on its machine) or with ``PYCONNECTOR_TEST_BROKER_RESTART=1`` the
RabbitMQ application is restarted too (``stop_app``/``start_app``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, rabbit_url, rabbitmqctl, start_server

import pyconnector

pytestmark = pytest.mark.e2e


@pytest.fixture
def platform(rabbit_vhost: str, tmp_path: Path) -> Iterator[Server]:
    server = start_server(tmp_path / "data", "", "--broker", rabbit_url(rabbit_vhost))
    yield server
    server.stop()


def close_connections(vhost: str) -> int:
    """Have RabbitMQ close every connection into ``vhost`` (the platform's); how many."""
    listing = rabbitmqctl("--no-table-headers", "list_connections", "pid", "vhost")
    pids = [line.split("\t")[0] for line in listing.splitlines()
            if line.split("\t")[-1].strip() == vhost]
    for pid in pids:
        rabbitmqctl("close_connection", pid, "test: the broker goes away")
    return len(pids)


def restart_rabbitmq(_vhost: str) -> int:
    rabbitmqctl("stop_app")
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
    return 1


def until(what: str, attempt: Callable[[], Any], timeout: float = 60) -> Any:
    """``attempt()``'s value once it raises no platform error; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except (pyconnector.ServerError, pyconnector.TransportError):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s: {what}") from None
            time.sleep(0.2)


def check_both_resume(server: Server, vhost: str,
                      take_away: Callable[[str], int]) -> None:
    with server.connector() as conn:
        srws = conn.srwsUtils()
        ex, q = f"ex{uuid.uuid4().hex[:6]}", f"q{uuid.uuid4().hex[:6]}"
        srws.createExchange(ex)
        srws.createQueue(q)
        with srws.webSocketSubTopic(ex, "#") as sub, srws.webSocketSubQueue(q) as queue:
            for i in range(5):
                srws.SendRequestExchange(f"m{i}", queue=q)
            acked = []
            for _ in range(2):  # m0, m1 acknowledged; m2 taken, not acknowledged
                acked.append(queue.get(timeout=15))
                queue.ack()
            assert queue.get(timeout=15) == "m2"
            srws.SendRequestExchange("before", exchange=ex, topic="t")
            assert sub.get(timeout=15) == "before"

            assert take_away(vhost) >= 1, "the platform had no connection to close"

            until("a publish to the queue", lambda: srws.SendRequestExchange("m5", queue=q))
            # m2 (its channel went before the ack) and the rest come (again), on the
            # same WebSocket subscription; acknowledged now, none is lost.
            deadline = time.monotonic() + 60
            while not {"m2", "m3", "m4", "m5"} <= set(acked):
                assert time.monotonic() < deadline, f"acknowledged only {acked}"
                try:
                    acked.append(queue.get(timeout=2))
                except pyconnector.TimeoutError:
                    continue
                queue.ack()
            assert set(acked) == {f"m{i}" for i in range(6)}

            # The exchange subscription was declared and bound again: new messages come.
            got, n = None, 0
            while got is None:
                assert n < 300, "the WebSocket subscription never resumed"
                until("a publish to the exchange",
                      lambda n=n: srws.SendRequestExchange(f"after{n}", exchange=ex, topic="t"))
                n += 1
                try:
                    got = sub.get(timeout=0.2)
                except pyconnector.TimeoutError:
                    pass
            assert got.startswith("after")
        # Nothing was left in the queue: every message was acknowledged once taken.
        assert until("the queue's count", lambda: srws.getQueue(q))["messages"] == 0


def test_subscribers_resume_when_rabbitmq_closes_the_platforms_connections(
        platform: Server, rabbit_vhost: str) -> None:
    check_both_resume(platform, rabbit_vhost, close_connections)


def test_subscribers_resume_when_rabbitmq_restarts(platform: Server,
                                                   rabbit_vhost: str) -> None:
    if not (os.environ.get("CI") or os.environ.get("PYCONNECTOR_TEST_BROKER_RESTART")):
        pytest.skip("restarts the machine's RabbitMQ: runs under CI or with "
                    "PYCONNECTOR_TEST_BROKER_RESTART=1")
    check_both_resume(platform, rabbit_vhost, restart_rabbitmq)

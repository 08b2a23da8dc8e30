"""RabbitMQ going away while a subscriber and an acknowledging queue consumer are
attached: both resume on the same broker object, and nothing acknowledged is lost.

Two ways to lose RabbitMQ: the server closes our connection (``rabbitmqctl
close_connection``, only ours, so other users of the shared RabbitMQ do not notice), and
a full restart of the RabbitMQ application (``stop_app``/``start_app``), which runs under
``CI`` (alone on its machine) or when ``PYCONNECTOR_TEST_BROKER_RESTART=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from pyconnector_server.backends.broker import BrokerNotFound, Consumer, Subscription
from pyconnector_server.backends.broker.amqp import AmqpBroker
from pyconnector_server.backends.errors import BackendUnavailable
from tests.conftest import need_service, rabbitmqctl

pytestmark = pytest.mark.anyio

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def close_our_connections(broker: AmqpBroker) -> int:
    """Have RabbitMQ close the connections ``broker`` opened (named by it); how many."""
    return await anyio.to_thread.run_sync(_close_connections, broker.connection_name)


def _close_connections(name: str) -> int:
    listing = rabbitmqctl("--no-table-headers", "list_connections", "pid", "client_properties")
    pids = [line.split("\t", 1)[0] for line in listing.splitlines()
            if name in line]
    for pid in pids:
        rabbitmqctl("close_connection", pid, "test: forcing a reconnect")
    return len(pids)


@pytest.fixture
async def broker() -> AsyncIterator[AmqpBroker]:
    need_service("RabbitMQ", "127.0.0.1", 5672)
    b = AmqpBroker(AMQP_URL)
    yield b
    await b.close()


async def publish_until_taken(broker: AmqpBroker, exchange: str, key: str,
                              body: bytes) -> None:
    """Publish, trying again while RabbitMQ is unavailable (what the SOS outbox does)."""
    with anyio.fail_after(60):
        while True:
            try:
                await broker.publish(exchange, key, body)
                return
            except BackendUnavailable:
                await anyio.sleep(0.2)


async def take_acked(consumer: Consumer, want: set[bytes], acked: list[bytes],
                     seen: list[tuple[bytes, bool]]) -> None:
    """Consume and acknowledge until every body in ``want`` was acknowledged."""
    with anyio.fail_after(60):
        async for d in consumer:
            seen.append((d.body, d.redelivered))
            if await d.ack():
                acked.append(d.body)
            if want <= set(acked):
                return


async def next_body(sub: Subscription, prefix: bytes) -> bytes:
    """The next message of ``sub`` whose body starts with ``prefix``."""
    async for m in sub:
        if m.body.startswith(prefix):
            return m.body
    raise AssertionError("the subscription ended")


async def check_both_resume(broker: AmqpBroker,
                            take_away: Callable[[AmqpBroker], Awaitable[int]]) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    queue, exchange = f"{prefix}.q", f"{prefix}.fan"
    await broker.declare_queue(queue)
    await broker.declare_exchange(exchange, "fanout")
    try:
        async with broker.consume(queue, prefetch=10) as consumer, \
                broker.subscribe(exchange, max_buffer=1000) as sub:
            for i in range(5):
                await broker.publish("", queue, f"m{i}".encode())
            acked: list[bytes] = []
            seen: list[tuple[bytes, bool]] = []
            await take_acked(consumer, {b"m0", b"m1"}, acked, seen)
            with anyio.fail_after(10):
                pending = await consumer.__anext__()  # m2: delivered, not acknowledged
            assert pending.body == b"m2"
            await broker.publish(exchange, "", b"before")
            with anyio.fail_after(10):
                assert await next_body(sub, b"before") == b"before"

            assert await take_away(broker) >= 1, "no connection of ours to close"

            # The delivery's channel is gone: its ack is refused, and m2 comes again.
            assert not await pending.ack()
            await publish_until_taken(broker, "", queue, b"m5")
            await take_acked(consumer, {b"m2", b"m3", b"m4", b"m5"}, acked, seen)
            assert sorted(acked) == [f"m{i}".encode() for i in range(6)]  # none lost, once
            assert (b"m2", True) in seen
            assert await broker.queue_length(queue) == 0

            # The subscription's queue was redeclared and bound again: new messages arrive.
            # (What was published while it was away is not kept for it.)
            got = None
            with anyio.fail_after(60):
                n = 0
                while got is None:
                    await publish_until_taken(broker, exchange, "", f"after{n}".encode())
                    n += 1
                    with anyio.move_on_after(0.5):
                        got = await next_body(sub, b"after")
            assert got.startswith(b"after")
            assert sub.dropped == 0

            # On its new channel the consumer still learns that its queue was deleted.
            waiting = asyncio.ensure_future(consumer.__anext__())
            await broker.delete_queue(queue)
            with anyio.fail_after(10), pytest.raises(BrokerNotFound, match="deleted"):
                await waiting
    finally:
        with contextlib.suppress(BrokerNotFound):
            await broker.delete_queue(queue)
        with contextlib.suppress(BrokerNotFound):
            await broker.delete_exchange(exchange)


async def test_consumer_and_subscriber_resume_after_the_connection_is_closed(
        broker: AmqpBroker) -> None:
    await check_both_resume(broker, close_our_connections)


async def test_consumer_and_subscriber_resume_after_a_broker_restart(
        broker: AmqpBroker) -> None:
    if not (os.environ.get("CI") or os.environ.get("PYCONNECTOR_TEST_BROKER_RESTART")):
        pytest.skip("restarts the shared RabbitMQ: runs under CI, or with "
                    "PYCONNECTOR_TEST_BROKER_RESTART=1")

    async def restart(b: AmqpBroker) -> int:
        await anyio.to_thread.run_sync(rabbitmqctl, "stop_app")
        try:
            # While it is down an operation fails soon, as unavailable (503), not hangs.
            with anyio.fail_after(30), pytest.raises(BackendUnavailable):
                await b.queue_length("anything")
        finally:
            await anyio.to_thread.run_sync(rabbitmqctl, "start_app")
        return 1

    await check_both_resume(broker, restart)

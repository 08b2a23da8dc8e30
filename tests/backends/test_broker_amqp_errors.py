"""RabbitMQ's failures reach the platform as its own errors (503 or 502), never as an
aio-pika or aiormq exception, and in seconds."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import anyio
import pytest

from pyconnector_server.backends.broker import BrokerNotFound, open_broker
from pyconnector_server.backends.errors import BackendError, BackendUnavailable
from tests.conftest import need_service

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_nothing_listening_is_unavailable_and_stays_usable() -> None:
    broker = open_broker(f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    try:
        for call in (lambda: broker.queue_length("q"),
                     lambda: broker.publish("", "q", b"x"),
                     lambda: broker.declare_exchange("ex", "topic")):
            with anyio.fail_after(30), pytest.raises(BackendUnavailable) as caught:
                await call()
            assert caught.value.status == 503
            assert "try again later" in caught.value.message
            assert "127.0.0.1" not in caught.value.message  # no network details to clients
            assert caught.value.__cause__ is not None  # the original, for the log
        with pytest.raises(BackendUnavailable):
            await broker.consume("q")
    finally:
        await broker.close()


@pytest.mark.parametrize(("url", "message"), [
    ("amqp://guest:wrong@127.0.0.1:5672/", "credentials"),
    ("amqp://guest:guest@127.0.0.1:5672/no-such-vhost", "virtual host"),
])
async def test_a_refusal_is_a_backend_error(url: str, message: str) -> None:
    need_service("RabbitMQ", "127.0.0.1", 5672)
    broker = open_broker(url)
    try:
        with anyio.fail_after(30), pytest.raises(BackendError, match=message) as caught:
            await broker.queue_length("q")
        assert type(caught.value) is BackendError and caught.value.status == 502
    finally:
        await broker.close()


async def test_a_closed_broker_refuses_work() -> None:
    need_service("RabbitMQ", "127.0.0.1", 5672)
    broker = open_broker("amqp://guest:guest@127.0.0.1:5672/")
    with pytest.raises(BrokerNotFound):
        await broker.queue_length("pyc-test-no-such-queue")
    await broker.close()
    await broker.close()  # idempotent
    with pytest.raises(BackendUnavailable, match="closed"):
        await broker.publish("", "q", b"x")


async def test_a_publish_to_an_exchange_deleted_elsewhere_fails_alone() -> None:
    # RabbitMQ closes the publishing channel for a missing exchange, discarding what other
    # publishers sent on it after: they must not fail, nor lose their messages.
    need_service("RabbitMQ", "127.0.0.1", 5672)
    url = "amqp://guest:guest@127.0.0.1:5672/"
    broker, elsewhere = open_broker(url), open_broker(url)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    good, gone, queue = f"{prefix}.good", f"{prefix}.gone", f"{prefix}.q"
    try:
        await broker.declare_exchange(good, "fanout")
        await broker.declare_exchange(gone, "fanout")
        await broker.declare_queue(queue)
        await broker.bind(queue, good)
        await broker.publish(gone, "k", b"so that this broker knows it")
        await elsewhere.delete_exchange(gone)
        with anyio.fail_after(60):
            results = await asyncio.gather(
                *(broker.publish(good, "k", str(i).encode()) for i in range(50)),
                broker.publish(gone, "k", b"x"),
                *(broker.publish(good, "k", str(i).encode()) for i in range(50, 100)),
                return_exceptions=True)
        failed = [r for r in results if r is not None]
        assert len(failed) == 1 and isinstance(failed[0], BrokerNotFound), failed
        assert results[50] is failed[0]
        got = []
        async with broker.consume(queue, prefetch=200) as consumer:
            with anyio.fail_after(10):
                async for d in consumer:
                    got.append(int(d.body))
                    await d.ack()
                    if set(got) == set(range(100)):
                        break
        assert set(got) == set(range(100))
    finally:
        with contextlib.suppress(BrokerNotFound):
            await broker.delete_queue(queue)
        with contextlib.suppress(BrokerNotFound):
            await broker.delete_exchange(good)
        await broker.close()
        await elsewhere.close()

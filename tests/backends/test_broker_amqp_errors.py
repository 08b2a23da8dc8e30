"""RabbitMQ's failures reach the platform as its own errors (503 or 502), never as an
aio-pika or aiormq exception, and in seconds."""

from __future__ import annotations

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

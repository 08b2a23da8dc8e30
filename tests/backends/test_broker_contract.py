"""One contract for every message broker: the embedded router (memory://) and RabbitMQ
(amqp:// on 127.0.0.1:5672). The topic table runs on both, so RabbitMQ itself checks
that the embedded matcher reads wildcards as it does."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from pyconnector_server.backends.broker import (
    Broker,
    BrokerConflict,
    BrokerNotFound,
    Delivery,
    open_broker,
    topic_matches,
)
from pyconnector_server.backends.broker.base import MAX_NAME_BYTES
from tests.conftest import need_service

pytestmark = pytest.mark.anyio

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Names:
    """Unique names per test, and what the test declared, deleted at the end (RabbitMQ
    is shared with other tests and engineers)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.exchanges: list[str] = []
        self.queues: list[str] = []

    def __call__(self, what: str) -> str:
        return f"{self.prefix}.{what}"

    async def exchange(self, what: str, kind: str) -> str:
        name = self(what)
        await self.broker.declare_exchange(name, kind)
        self.exchanges.append(name)
        return name

    async def queue(self, what: str, max_length: int | None = None) -> str:
        name = self(what)
        await self.broker.declare_queue(name, max_length)
        self.queues.append(name)
        return name

    async def cleanup(self) -> None:
        for name in self.queues:
            with contextlib.suppress(BrokerNotFound):
                await self.broker.delete_queue(name)
        for name in self.exchanges:
            with contextlib.suppress(BrokerNotFound):
                await self.broker.delete_exchange(name)


@pytest.fixture(params=["memory", "amqp"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "amqp":
        need_service("RabbitMQ", "127.0.0.1", 5672)
        b = open_broker(AMQP_URL)
    else:
        b = open_broker("memory://")
    yield b
    await b.close()


@pytest.fixture
async def names(broker: Broker) -> AsyncIterator[Names]:
    n = Names(broker)
    yield n
    await n.cleanup()


async def eventually(what: str, done: Callable[[], bool], timeout: float = 10) -> None:
    """Await ``done()`` becoming true; fail naming ``what`` after ``timeout`` seconds."""
    with anyio.move_on_after(timeout):
        while not done():
            await anyio.sleep(0.01)
        return
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


async def take(broker: Broker, queue: str, n: int) -> list[Delivery]:
    """``n`` deliveries of ``queue``, acknowledged."""
    got = []
    with anyio.fail_after(10):
        async with broker.consume(queue, prefetch=max(n, 1)) as consumer:
            async for d in consumer:
                got.append(d)
                await d.ack()
                if len(got) == n:
                    break
    return got


async def bodies(broker: Broker, queue: str) -> list[bytes]:
    """Everything ready in ``queue`` (its length after confirmed publishes), taken."""
    return [d.body for d in await take(broker, queue, await broker.queue_length(queue))]


async def nothing_more(source: Awaitable[object]) -> None:
    """``source`` (a next()) yields nothing for a moment: a negative check, bounded."""
    with anyio.move_on_after(0.3) as scope:
        got = await source
    assert scope.cancelled_caught, f"unexpected {got!r}"


# -- exchanges and routing ------------------------------------------------------------------
async def test_direct_exchange_routes_on_the_exact_key(broker: Broker, names: Names) -> None:
    ex = await names.exchange("direct", "direct")
    q1, q2 = await names.queue("q1"), await names.queue("q2")
    await broker.bind(q1, ex, "room1")
    await broker.bind(q2, ex, "room2")
    await broker.bind(q2, ex, "room1")
    for key in ["room1", "room2", "room1.x", "ROOM1", ""]:
        await broker.publish(ex, key, key.encode())
    assert await bodies(broker, q1) == [b"room1"]
    assert await bodies(broker, q2) == [b"room1", b"room2"]


async def test_fanout_routes_to_every_bound_queue_once(broker: Broker, names: Names) -> None:
    ex = await names.exchange("fan", "fanout")
    q1, q2 = await names.queue("q1"), await names.queue("q2")
    await broker.bind(q1, ex, "ignored")
    await broker.bind(q2, ex)
    await broker.bind(q2, ex, "another")  # two bindings, one copy
    await broker.publish(ex, "any.key", b"m")
    assert await bodies(broker, q1) == [b"m"]
    assert await bodies(broker, q2) == [b"m"]


ROUTING_KEYS = ["", "a", "b", "a.b", "b.a", "a.c", "a.b.c", "a..c", "a.b.b.c", "a.x.y.b",
                "a.", "."]
# binding key → the routing keys above it selects, worked out by hand from the AMQP rules
TOPIC_TABLE = {
    "#": set(ROUTING_KEYS),
    "#.#": set(ROUTING_KEYS),
    "*.#": set(ROUTING_KEYS) - {""},
    "a.#": {"a", "a.b", "a.c", "a.b.c", "a..c", "a.b.b.c", "a.x.y.b", "a."},
    "#.b": {"b", "a.b", "a.x.y.b"},
    "a.#.b": {"a.b", "a.x.y.b"},
    "a.*.c": {"a.b.c", "a..c"},
    "*": {"a", "b"},
    "a.*": {"a.b", "a.c", "a."},
    "*.*": {"a.b", "b.a", "a.c", "a.", "."},
    "": {""},
    "a.b": {"a.b"},
}


@pytest.mark.parametrize("binding", sorted(TOPIC_TABLE))
def test_topic_matcher_follows_the_table(binding: str) -> None:
    assert {k for k in ROUTING_KEYS if topic_matches(binding, k)} == TOPIC_TABLE[binding]


def test_topic_matcher_is_linear_on_many_hashes() -> None:
    # A backtracking matcher takes exponential time here; the test would not finish.
    assert not topic_matches(".".join(["#"] * 60) + ".z", ".".join(["a"] * 60))
    assert topic_matches(".".join(["#"] * 60) + ".a", ".".join(["a"] * 60))


async def test_topic_exchange_routes_by_wildcards(broker: Broker, names: Names) -> None:
    ex = await names.exchange("topic", "topic")
    queues = {}
    for i, binding in enumerate(sorted(TOPIC_TABLE)):
        queues[binding] = await names.queue(f"q{i}")
        await broker.bind(queues[binding], ex, binding)
    for key in ROUTING_KEYS:
        await broker.publish(ex, key, key.encode())
    for binding, queue in queues.items():
        got = await bodies(broker, queue)
        assert {b.decode() for b in got} == TOPIC_TABLE[binding], binding
        assert got == [k.encode() for k in ROUTING_KEYS if k in TOPIC_TABLE[binding]]


async def test_default_exchange_routes_to_the_queue_named_by_the_key(
        broker: Broker, names: Names) -> None:
    q = await names.queue("q")
    await broker.publish("", q, b"direct to queue", {"sensor": "s1", "n": 3})
    await broker.publish("", names("no-such-queue"), b"dropped")  # not an error in AMQP
    [d] = await take(broker, q, 1)
    assert (d.body, d.exchange, d.routing_key) == (b"direct to queue", "", q)
    assert dict(d.headers) == {"sensor": "s1", "n": 3}
    assert not d.redelivered


async def test_unbind_stops_routing_and_unbinding_twice_is_fine(
        broker: Broker, names: Names) -> None:
    ex = await names.exchange("topic", "topic")
    q = await names.queue("q")
    await broker.bind(q, ex, "s.*")
    await broker.bind(q, ex, "s.*")  # idempotent
    await broker.publish(ex, "s.1", b"1")
    await broker.unbind(q, ex, "s.*")
    await broker.unbind(q, ex, "s.*")
    await broker.publish(ex, "s.2", b"2")
    assert await bodies(broker, q) == [b"1"]


async def test_the_predeclared_topic_exchange_can_be_used_not_redeclared(
        broker: Broker, names: Names) -> None:
    q = await names.queue("q")
    key = names("device.temp")
    await broker.bind(q, "amq.topic", key)
    await broker.publish("amq.topic", key, b"from mqtt")
    await broker.unbind(q, "amq.topic", key)
    assert await bodies(broker, q) == [b"from mqtt"]
    with pytest.raises(ValueError, match="reserved"):
        await broker.declare_exchange("amq.topic", "topic")
    with pytest.raises(ValueError, match="reserved"):
        await broker.delete_exchange("amq.topic")


async def test_redeclaring_the_same_is_fine_other_properties_conflict(
        broker: Broker, names: Names) -> None:
    ex = await names.exchange("ex", "topic")
    await broker.declare_exchange(ex, "topic")
    with pytest.raises(BrokerConflict, match="exchange"):
        await broker.declare_exchange(ex, "fanout")
    q = await names.queue("q", max_length=10)
    await broker.declare_queue(q, max_length=10)
    with pytest.raises(BrokerConflict, match="queue"):
        await broker.declare_queue(q, max_length=20)
    await broker.publish(ex, "still.usable", b"x")  # the conflict broke nothing


# -- queues ---------------------------------------------------------------------------------
async def test_a_queue_keeps_order(broker: Broker, names: Names) -> None:
    q = await names.queue("q")
    for i in range(50):
        await broker.publish("", q, str(i).encode())
    assert await broker.queue_length(q) == 50
    assert [d.body for d in await take(broker, q, 50)] == [str(i).encode() for i in range(50)]
    assert await broker.queue_length(q) == 0


async def test_ack_nack_and_requeue(broker: Broker, names: Names) -> None:
    q = await names.queue("q")
    for i in range(4):
        await broker.publish("", q, f"m{i}".encode())
    with anyio.fail_after(10):
        async with broker.consume(q, prefetch=1) as consumer:
            first = await consumer.__anext__()
            assert (first.body, first.redelivered) == (b"m0", False)
            assert await first.nack(requeue=True)
            with pytest.raises(RuntimeError, match="already"):
                await first.ack()
            again = await consumer.__anext__()
            assert (again.body, again.redelivered) == (b"m0", True)  # back in its place
            assert await again.ack()
            dropped = await consumer.__anext__()
            assert dropped.body == b"m1"
            assert await dropped.nack(requeue=False)
            kept = await consumer.__anext__()
            assert kept.body == b"m2"
            # prefetch=1: nothing more comes until m2 is settled
            await nothing_more(consumer.__anext__())
        # Closed with m2 unacknowledged: it goes back, and its ack is refused.
        assert not await kept.ack()
    assert await broker.queue_length(q) == 2
    again_later = await take(broker, q, 2)
    assert [(d.body, d.redelivered) for d in again_later] == [(b"m2", True), (b"m3", False)]


async def test_length_purge_delete(broker: Broker, names: Names) -> None:
    q = await names.queue("q")
    for _ in range(7):
        await broker.publish("", q, b"x")
    assert await broker.queue_length(q) == 7
    assert await broker.purge_queue(q) == 7
    assert await broker.queue_length(q) == 0
    await broker.publish("", q, b"y")
    await broker.delete_queue(q)
    with pytest.raises(BrokerNotFound, match=q):
        await broker.queue_length(q)
    with pytest.raises(BrokerNotFound):
        await broker.delete_queue(q)
    with pytest.raises(BrokerNotFound):
        await broker.purge_queue(q)


async def test_a_bounded_queue_drops_the_oldest(broker: Broker, names: Names) -> None:
    q = await names.queue("q", max_length=3)
    for i in range(5):
        await broker.publish("", q, f"m{i}".encode())
    assert await broker.queue_length(q) == 3
    assert await bodies(broker, q) == [b"m2", b"m3", b"m4"]


async def test_deleting_a_queue_ends_its_consumer(broker: Broker, names: Names) -> None:
    q = await names.queue("q")
    async with broker.consume(q) as consumer:
        waiting = asyncio.ensure_future(consumer.__anext__())
        await asyncio.sleep(0)  # let it start waiting
        await broker.delete_queue(q)
        with anyio.fail_after(10), pytest.raises(BrokerNotFound, match="deleted"):
            await waiting


# -- subscriptions --------------------------------------------------------------------------
async def test_a_subscription_gets_matching_messages_in_order_from_now_on(
        broker: Broker, names: Names) -> None:
    ex = await names.exchange("topic", "topic")
    await broker.publish(ex, "s.early", b"before")
    async with broker.subscribe(ex, "s.*", max_buffer=100) as sub:
        for i in range(20):
            await broker.publish(ex, "s.t" if i % 2 else "other.t", str(i).encode())
        got = []
        with anyio.fail_after(10):
            async for m in sub:
                got.append((m.body, m.exchange, m.routing_key))
                if len(got) == 10:
                    break
        assert got == [(str(i).encode(), ex, "s.t") for i in range(1, 20, 2)]
        assert sub.dropped == 0
        private = sub.queue
        assert await broker.queue_length(private) == 0
    with pytest.raises(BrokerNotFound):  # the private queue went with the subscription
        await broker.queue_length(private)


async def test_a_slow_subscriber_drops_the_oldest_and_counts(
        broker: Broker, names: Names) -> None:
    ex = await names.exchange("fan", "fanout")
    async with broker.subscribe(ex, max_buffer=5) as sub:
        for i in range(12):
            await broker.publish(ex, "k", str(i).encode())
        await eventually("7 drops", lambda: sub.dropped == 7)
        got = []
        with anyio.fail_after(10):
            async for m in sub:
                got.append(m.body)
                if len(got) == 5:
                    break
        assert got == [str(i).encode() for i in range(7, 12)]
        await nothing_more(sub.__anext__())
        # Still open after dropping: fresh messages come through.
        await broker.publish(ex, "k", b"fresh")
        with anyio.fail_after(10):
            assert (await sub.__anext__()).body == b"fresh"
        assert sub.dropped == 7


async def test_take_ready_hands_over_what_is_here_in_order_without_waiting(
        broker: Broker, names: Names) -> None:
    ex = await names.exchange("fan", "fanout")
    async with broker.subscribe(ex, max_buffer=100) as sub:
        assert sub.take_ready(10) == []  # nothing yet: no wait
        for i in range(7):
            await broker.publish(ex, "k", str(i).encode())
        with anyio.fail_after(10):
            got = [(await sub.__anext__()).body]  # waits for the first
            while len(got) < 7:  # the rest, as they reach the subscription
                batch = sub.take_ready(4)
                assert len(batch) <= 4
                got += [m.body for m in batch]
                await asyncio.sleep(0.01)
        assert got == [str(i).encode() for i in range(7)]
        assert sub.take_ready(100) == []


async def test_closing_ends_iteration(broker: Broker, names: Names) -> None:
    ex = await names.exchange("fan", "fanout")
    sub = await broker.subscribe(ex)
    waiting = asyncio.ensure_future(sub.__anext__())
    await asyncio.sleep(0)
    await sub.close()
    await sub.close()  # idempotent
    with anyio.fail_after(10), pytest.raises(StopAsyncIteration):
        await waiting


# -- errors ---------------------------------------------------------------------------------
async def test_missing_exchanges_and_queues_are_not_found(broker: Broker, names: Names) -> None:
    ex = await names.exchange("ex", "direct")
    q = await names.queue("q")
    missing = names("missing")
    with pytest.raises(BrokerNotFound, match=f"exchange '{missing}' does not exist"):
        await broker.publish(missing, "k", b"x")
    # RabbitMQ closes a channel on a missing exchange: publishing goes on working.
    await broker.bind(q, ex, "k")
    await broker.publish(ex, "k", b"after")
    assert await bodies(broker, q) == [b"after"]
    with pytest.raises(BrokerNotFound, match="exchange"):
        await broker.bind(q, missing, "k")
    with pytest.raises(BrokerNotFound, match="queue"):
        await broker.bind(missing, ex, "k")
    with pytest.raises(BrokerNotFound, match="queue"):
        await broker.unbind(missing, ex, "k")
    with pytest.raises(BrokerNotFound):
        await broker.delete_exchange(missing)
    with pytest.raises(BrokerNotFound):
        await broker.consume(missing)
    with pytest.raises(BrokerNotFound):
        await broker.subscribe(missing)
    with pytest.raises(KeyError):  # the service maps it to 404 as a KeyError
        await broker.queue_length(missing)
    await broker.delete_exchange(ex)
    with pytest.raises(BrokerNotFound):
        await broker.publish(ex, "k", b"x")


@pytest.mark.parametrize(("call", "message"), [
    (lambda b: b.declare_exchange("x" * (MAX_NAME_BYTES + 1)), "at most 255 bytes"),
    (lambda b: b.declare_queue("é" * 128), "at most 255 bytes"),  # 256 bytes of UTF-8
    (lambda b: b.declare_queue("bad\nname"), "control character"),
    (lambda b: b.declare_queue(""), "must not be empty"),
    (lambda b: b.declare_queue("amq.mine"), "reserved"),
    (lambda b: b.declare_exchange("ok", "headers"), "one of direct, topic, fanout"),
    (lambda b: b.declare_queue("ok", max_length=0), "max_length"),
    (lambda b: b.publish("x\x00", "k", b""), "exchange name"),
    (lambda b: b.publish("", "k" * 256, b""), "routing key"),
    (lambda b: b.publish("", "k", "text"), "must be bytes"),
    (lambda b: b.publish("", "k", b"", {"h": object()}), "header 'h'"),
    (lambda b: b.publish("", "k", b"", {f"h{i}": 1 for i in range(65)}), "at most 64"),
    (lambda b: b.bind("q", "", "k"), "default exchange"),
    (lambda b: b.bind("q", "ex", "k\x7f"), "binding key"),
    (lambda b: b.consume("q", prefetch=0), "prefetch"),
    (lambda b: b.subscribe("ex", "#", max_buffer=0), "max_buffer"),
    (lambda b: b.subscribe("ex", "#", max_buffer=10**9), "max_buffer"),
])
async def test_bad_arguments_are_refused_naming_them(
        broker: Broker, call: Callable[[Broker], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        result = call(broker)
        if asyncio.iscoroutine(result):
            await result


async def test_publish_from_a_thread(broker: Broker, names: Names) -> None:
    q = await names.queue("q")
    loop = asyncio.get_running_loop()
    thread = threading.Thread(target=broker.publish_threadsafe,
                              args=(loop, "", q, b"from a worker thread"))
    thread.start()
    with anyio.fail_after(10):
        while thread.is_alive():
            await anyio.sleep(0.01)
    assert await bodies(broker, q) == [b"from a worker thread"]

"""Message broker benchmarks, standalone: ``.venv/bin/python benchmarks/broker_throughput.py``.

What the routing service's WebSocket and SSE paths cost in the broker layer: a publisher
sends SOS-like JSON bodies (about 200 bytes) to a topic exchange with a routing key, and
one subscriber (``Broker.subscribe`` with ``#``) receives them.

1. **Throughput** (messages/s): ``--messages`` messages published by ``--publishers``
   concurrent publishers (each awaits its publish, i.e. the broker's confirm), timed from
   the first publish to the last message received.
2. **Latency at 1,000 msg/s** (ms, p50 and p99): one publisher paced at ``--rate``
   messages/s for ``--seconds``; each message carries its send time, the subscriber
   takes the difference on receipt (same process, same clock).

Backends: ``memory://`` (goals: ≥ 20,000 msg/s; p99 < 20 ms) and ``amqp://`` on the
RabbitMQ at ``--amqp`` with, **in the same run**, the baseline: raw aio-pika doing the
same (a confirm channel publishing persistent messages through ``Exchange.publish``; an
exclusive queue bound with ``#`` consumed without acks). Goal: ours ≥ 0.5 of raw.

All in one process, on uvloop when it is installed (as ``pyconnector serve`` runs), for
ours and the baseline alike. Options: ``--runs N`` (default 3; medians), ``--only
memory|amqp``, ``--markdown``. The machine is shared: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Metric, log, table  # noqa: E402

from pyconnector_server.backends.broker import Broker, open_broker  # noqa: E402

Publish = Callable[[str, bytes], Awaitable[Any]]


def body(i: int, sent: float) -> bytes:
    """An SOS observation as routing carries it, with its send time for the latency."""
    return json.dumps({"sensor": f"s{i % 10}", "feature": "bench-plant", "sent": sent,
                       "record": [{"starttime": 1704067200000 + i, "output": [
                           {"name": "temperature", "value": 21.5},
                           {"name": "status", "value": "ok"}]}]}).encode()


def key(i: int) -> str:
    return f"bench-plant.s{i % 10}"


# -- the two things measured, over any publish and any message source --------------------------
async def throughput(publish: Publish, received: Callable[[], int], n: int,
                     publishers: int) -> float:
    """Messages/s from the first publish until ``received()`` reaches ``n`` (the bodies
    are built before the clock starts)."""
    messages = [(key(i), body(i, 0.0)) for i in range(n)]
    start = time.perf_counter()

    async def publisher(k: int) -> None:
        for i in range(k, n, publishers):
            await publish(*messages[i])

    await asyncio.gather(*(publisher(k) for k in range(publishers)))
    while received() < n:
        await asyncio.sleep(0.0005)
    return n / (time.perf_counter() - start)


async def latency(publish: Publish, delays: list[float], rate: int,
                  seconds: float) -> tuple[float, float]:
    """p50 and p99 (ms) of send→receive at ``rate`` messages/s."""
    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        wait = start + i / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        await publish(key(i), body(i, time.perf_counter()))
    deadline = time.perf_counter() + 30
    while len(delays) < n and time.perf_counter() < deadline:
        await asyncio.sleep(0.001)
    if len(delays) < n:
        raise RuntimeError(f"only {len(delays)} of {n} messages arrived")
    q = statistics.quantiles(delays, n=100)
    return q[49] * 1000, q[98] * 1000


# -- ours ------------------------------------------------------------------------------------
async def ours(url: str, n: int, publishers: int, rate: int,
               seconds: float) -> dict[str, float]:
    broker: Broker = open_broker(url)
    exchange = f"bench.{uuid.uuid4().hex[:8]}"
    await broker.declare_exchange(exchange, "topic")
    try:
        async def publish(routing_key: str, data: bytes) -> None:
            await broker.publish(exchange, routing_key, data)

        out: dict[str, float] = {}
        async with broker.subscribe(exchange, "#", max_buffer=100_000) as sub:
            count = 0

            async def drain() -> None:
                nonlocal count
                async for _ in sub:
                    count += 1

            reader = asyncio.ensure_future(drain())
            out["throughput"] = await throughput(publish, lambda: count, n, publishers)
            reader.cancel()
            if sub.dropped:
                raise RuntimeError(f"{sub.dropped} messages dropped: raise max_buffer")

        async with broker.subscribe(exchange, "#", max_buffer=100_000) as sub:
            delays: list[float] = []

            async def timed() -> None:
                async for m in sub:
                    delays.append(time.perf_counter() - json.loads(m.body)["sent"])

            reader = asyncio.ensure_future(timed())
            out["p50"], out["p99"] = await latency(publish, delays, rate, seconds)
            reader.cancel()
        return out
    finally:
        await broker.delete_exchange(exchange)
        await broker.close()


# -- the baseline: raw aio-pika -----------------------------------------------------------------
async def raw_aio_pika(url: str, n: int, publishers: int, rate: int,
                       seconds: float) -> dict[str, float]:
    import aio_pika

    connection = await aio_pika.connect_robust(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        name = f"bench.raw.{uuid.uuid4().hex[:8]}"
        exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)

        async def publish(routing_key: str, data: bytes) -> None:
            await exchange.publish(
                aio_pika.Message(data, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key)

        async def subscribed(on_body: Callable[[bytes], None]) -> Any:
            sub_channel = await connection.channel(publisher_confirms=False)
            queue = await sub_channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(exchange, "#")

            async def on_message(message: Any) -> None:
                on_body(message.body)

            await queue.consume(on_message, no_ack=True)
            return sub_channel

        out: dict[str, float] = {}
        count = 0

        def counted(_: bytes) -> None:
            nonlocal count
            count += 1

        sub_channel = await subscribed(counted)
        out["throughput"] = await throughput(publish, lambda: count, n, publishers)
        await sub_channel.close()

        delays: list[float] = []
        sub_channel = await subscribed(
            lambda b: delays.append(time.perf_counter() - json.loads(b)["sent"]))
        out["p50"], out["p99"] = await latency(publish, delays, rate, seconds)
        await sub_channel.close()
        await exchange.delete()
        return out
    finally:
        await connection.close()


# -- the run ------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["memory", "amqp"])
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--messages", type=int, default=0,
                        help="throughput messages (default: 100000 memory, 20000 amqp)")
    parser.add_argument("--publishers", type=int, default=32)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    log(f"event loop: {loop_name}")

    metrics: list[Metric] = []
    if args.only in (None, "memory"):
        n = args.messages or 100_000
        thr = Metric("memory", "publish→subscribe", "msg/s", goal="value >= 20000")
        p50 = Metric("memory", "latency p50 @1000/s", "ms", higher_is_better=False)
        p99 = Metric("memory", "latency p99 @1000/s", "ms", higher_is_better=False,
                     goal="value < 20")
        for run in range(args.runs):
            log(f"memory run {run + 1}/{args.runs}")
            r = asyncio.run(ours("memory://", n, args.publishers, args.rate, args.seconds))
            thr.ours.append(r["throughput"])
            p50.ours.append(r["p50"])
            p99.ours.append(r["p99"])
        metrics += [thr, p50, p99]
    if args.only in (None, "amqp"):
        n = args.messages or 20_000
        thr = Metric("amqp", "publish→subscribe", "msg/s", base_name="raw aio-pika",
                     goal="ratio >= 0.5")
        p50 = Metric("amqp", "latency p50 @1000/s", "ms", base_name="raw aio-pika",
                     higher_is_better=False)
        p99 = Metric("amqp", "latency p99 @1000/s", "ms", base_name="raw aio-pika",
                     higher_is_better=False)
        for run in range(args.runs):
            log(f"amqp run {run + 1}/{args.runs}: ours")
            r = asyncio.run(ours(args.amqp, n, args.publishers, args.rate, args.seconds))
            log(f"amqp run {run + 1}/{args.runs}: raw aio-pika")
            b = asyncio.run(raw_aio_pika(args.amqp, n, args.publishers, args.rate,
                                         args.seconds))
            for metric, k in ((thr, "throughput"), (p50, "p50"), (p99, "p99")):
                metric.ours.append(r[k])
                metric.base.append(b[k])
        metrics += [thr, p50, p99]
    print(table(metrics, markdown=args.markdown))


if __name__ == "__main__":
    main()

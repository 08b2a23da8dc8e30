"""WebSocket publish → subscriber through a running platform, end to end:
``.venv/bin/python benchmarks/routing_ws.py``.

A real ``pyconnector serve`` (SQLite, the embedded router, or ``--broker amqp://…``);
one WebSocket connection publishes SOS-like JSON to a topic exchange of the tenant with
``{"action": "publish", …}`` frames (pipelined: up to ``--window`` unanswered), another is
subscribed to the exchange with ``#``; both are ``websockets`` asyncio clients in this
process. Measured as ``broker_throughput.py`` measures the broker alone, with the same
message bodies:

1. **Throughput** (messages/s): ``--messages`` published, timed from the first publish
   to the last message received by the subscriber.
2. **Latency at 1,000 msg/s** (ms, p50 and p99): paced publishes, each carrying its
   send time; the subscriber takes the difference on receipt.

The baseline, **in the same run**, is the same broker without the platform in between
(``broker_throughput.ours``: publish and subscribe in one process), so the ratio is what
the platform's HTTP server, WebSocket framing, JSON and checks cost. Goals (issue 8):
≥ 20,000 messages/s and p99 < 20 ms at 1,000 msg/s on the embedded router; through
RabbitMQ, ≥ 0.5 of raw aio-pika (``broker_throughput.py`` measures that ratio for the
broker layer). Options: ``--runs N`` (default 3; medians), ``--broker URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import broker_throughput as bt  # noqa: E402
import httpx  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from pyconnector_server.process import ServerProcess  # noqa: E402

MR = "/MessageRouting/v2.0"


async def platform_run(url: str, key: str, exchange: str, n: int, window: int, rate: int,
                       seconds: float) -> dict[str, float]:
    ws_url = url.replace("http://", "ws://") + f"{MR}/ws"
    headers = {"x-api-key": key}
    async with connect(ws_url, additional_headers=headers, max_queue=None) as sub, \
            connect(ws_url, additional_headers=headers, max_queue=None) as pub:
        await sub.send(json.dumps({"action": "subscribe", "exchange": exchange,
                                   "topic": "#"}))
        assert json.loads(await sub.recv())["type"] == "subscribed"
        received: list[Any] = []
        capacity = asyncio.Semaphore(window)  # publishes not yet answered

        async def answers() -> None:
            async for _ in pub:
                capacity.release()

        async def messages() -> None:
            async for frame in sub:
                received.append(frame)

        tasks = [asyncio.ensure_future(answers()), asyncio.ensure_future(messages())]

        async def publish(routing_key: str, data: bytes) -> None:
            await capacity.acquire()
            await pub.send(f'{{"action": "publish", "exchange": "{exchange}", '
                           f'"topic": "{routing_key}", "message": {data.decode()}}}')

        out: dict[str, float] = {}
        out["throughput"] = await bt.throughput(publish, lambda: len(received), n, 1)
        received.clear()
        delays: list[float] = []

        async def timed() -> None:
            async for frame in sub:
                sent = json.loads(frame)["message"]["sent"]
                delays.append(time.perf_counter() - sent)

        tasks[1].cancel()
        tasks.append(asyncio.ensure_future(timed()))
        out["p50"], out["p99"] = await bt.latency(publish, delays, rate, seconds)
        for task in tasks:
            task.cancel()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--broker", default="memory://")
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    rows: dict[str, list[dict[str, float]]] = {"platform": [], "broker alone": []}
    with tempfile.TemporaryDirectory(prefix="pyc-bench-ws-") as tmp:
        extra = () if a.broker == "memory://" else ("--broker", a.broker)
        with ServerProcess.start(Path(tmp) / "data", "", *extra, timeout=90) as server:
            key = server.api_key
            for run in range(a.runs):
                exchange = f"bench{run}"
                r = httpx.post(f"{server.url}{MR}/topicExchanges", headers={"x-api-key": key},
                               json={"exchangeName": exchange}, timeout=30)
                r.raise_for_status()
                rows["platform"].append(asyncio.run(platform_run(
                    server.url, key, exchange, a.messages, a.window, a.rate, a.seconds)))
                rows["broker alone"].append(asyncio.run(bt.ours(
                    a.broker, a.messages, 1, a.rate, a.seconds)))
                print(f"run {run + 1}: platform {rows['platform'][-1]}, broker alone "
                      f"{rows['broker alone'][-1]}", flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("throughput", "p50", "p99")}
           for k, v in rows.items()}
    print(f"\nbroker {a.broker}, medians of {a.runs} runs")
    print("| path | messages/s | p50 ms at 1,000/s | p99 ms at 1,000/s |")
    print("|---|---|---|---|")
    for k, m in med.items():
        print(f"| {k} | {m['throughput']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} |")
    ratio = med["platform"]["throughput"] / med["broker alone"]["throughput"]
    print(f"\nratio platform / broker alone: {ratio:.2f}")


if __name__ == "__main__":
    main()

"""WebSocket publish → subscriber through a running platform, end to end:
``.venv/bin/python benchmarks/routing_ws.py``.

A real ``pyconnector serve`` (SQLite, the embedded router, or ``--broker amqp://…``);
one WebSocket connection publishes SOS-like JSON to a topic exchange of the tenant with
``{"action": "publish", …}`` frames, another is subscribed to the exchange with ``#``; both
are ``websockets`` asyncio clients in this process. Three framings (``MODES``): every
publish answered (``ref``; pipelined, up to ``--window`` unanswered) and one message per
subscriber frame; streamed, as the connector does (publishes unanswered but every 100th,
which paces the publisher; the subscription sends what is waiting in ``messages`` frames
of up to 100); and batched publishes of 100 messages per frame. Measured as ``broker_throughput.py`` measures the broker alone, with the same
message bodies:

1. **Throughput** (messages/s): ``--messages`` published, timed from the first publish
   to the last message received by the subscriber.
2. **Latency at 1,000 msg/s** (ms, p50 and p99): paced publishes, each carrying its
   send time; the subscriber takes the difference on receipt.

The baseline, **in the same run**, is the same broker without the platform in between
(``broker_throughput.ours``: publish and subscribe in one process), so the ratio is what
the platform's HTTP server, WebSocket framing, JSON and checks cost; on RabbitMQ the ratio
is to raw aio-pika publish → consume (``broker_throughput.raw_aio_pika``), also measured. Goals (issue 8):
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


#: how a run frames the messages: (answer every publish, messages per publish frame,
#: messages per subscriber frame at most)
MODES = {
    "each publish answered, one message per frame": (True, 1, 1),
    "streamed: answer every 100th, subscriber batches": (False, 1, 100),
    "batched: 100 per publish frame": (True, 100, 100),
}
ANSWER_EVERY = 100  # a streamed publisher asks for an answer this often (flow control)


async def platform_run(url: str, key: str, exchange: str, n: int, window: int, rate: int,
                       seconds: float, mode: str) -> dict[str, float]:
    answered, per_publish, batch = MODES[mode]
    ws_url = url.replace("http://", "ws://") + f"{MR}/ws"
    headers = {"x-api-key": key}
    # No compression: small JSON frames on loopback only pay for it.
    async with connect(ws_url, additional_headers=headers, max_queue=None,
                       compression=None) as sub, \
            connect(ws_url, additional_headers=headers, max_queue=None,
                    compression=None) as pub:
        await sub.send(json.dumps({"action": "subscribe", "exchange": exchange,
                                   "topic": "#", "batch": batch}))
        assert json.loads(await sub.recv())["type"] == "subscribed"
        received: list[Any] = []
        # At most ``window`` messages unanswered: frames of ``per_publish`` messages, or
        # (streamed) runs of ANSWER_EVERY messages whose last one is answered. More
        # would overrun the subscription's buffer, which drops the oldest.
        per_answer = per_publish if answered else ANSWER_EVERY
        capacity = asyncio.Semaphore(max(1, window // per_answer))
        pending: list[tuple[str, bytes]] = []
        sent = 0

        async def answers() -> None:
            async for _ in pub:
                capacity.release()

        def messages_of(frame: str | bytes) -> list[Any]:
            data = json.loads(frame)
            return data["messages"] if data["type"] == "messages" else [data]

        async def messages() -> None:
            async for frame in sub:
                received.extend(messages_of(frame))

        tasks = [asyncio.ensure_future(answers()), asyncio.ensure_future(messages())]

        async def send(bodies: list[bytes], routing_key: str, ask: bool) -> None:
            if ask:
                await capacity.acquire()
            ref = ', "ref": "r"' if ask else ""
            if len(bodies) == 1 and per_publish == 1:
                await pub.send(f'{{"action": "publish", "exchange": "{exchange}", "topic": '
                               f'"{routing_key}", "message": {bodies[0].decode()}{ref}}}')
            else:
                await pub.send(f'{{"action": "publish", "exchange": "{exchange}", "topic": '
                               f'"{routing_key}", "messages": '
                               f'[{",".join(b.decode() for b in bodies)}]{ref}}}')

        async def publish(routing_key: str, data: bytes) -> None:
            nonlocal sent
            sent += 1
            if per_publish == 1:
                await send([data], routing_key, answered or sent % ANSWER_EVERY == 0)
                return
            pending.append((routing_key, data))
            if len(pending) == per_publish:
                batch_ = [d for _, d in pending]
                pending.clear()
                await send(batch_, routing_key, True)

        out: dict[str, float] = {}
        out["throughput"] = await bt.throughput(publish, lambda: len(received), n, 1)
        if per_publish == 1:  # latency of single messages (a batch waits to fill)
            received.clear()
            delays: list[float] = []

            async def timed() -> None:
                async for frame in sub:
                    now = time.perf_counter()
                    delays.extend(now - m["message"]["sent"] for m in messages_of(frame))

            tasks[1].cancel()
            tasks.append(asyncio.ensure_future(timed()))
            out["p50"], out["p99"] = await bt.latency(publish, delays, rate, seconds)
        else:
            out["p50"] = out["p99"] = float("nan")
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
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    rows["broker alone"] = []
    with tempfile.TemporaryDirectory(prefix="pyc-bench-ws-") as tmp:
        extra = () if a.broker == "memory://" else ("--broker", a.broker)
        with ServerProcess.start(Path(tmp) / "data", "", *extra, timeout=90) as server:
            key = server.api_key
            for run in range(a.runs):
                for i, mode in enumerate(MODES):
                    exchange = f"bench{run}x{i}"
                    r = httpx.post(f"{server.url}{MR}/topicExchanges",
                                   headers={"x-api-key": key},
                                   json={"exchangeName": exchange}, timeout=30)
                    r.raise_for_status()
                    rows[mode].append(asyncio.run(platform_run(
                        server.url, key, exchange, a.messages, a.window, a.rate, a.seconds,
                        mode)))
                rows["broker alone"].append(asyncio.run(bt.ours(
                    a.broker, a.messages, 1, a.rate, a.seconds)))
                if a.broker.startswith("amqp"):  # the baseline: raw aio-pika
                    rows.setdefault("raw aio-pika", []).append(asyncio.run(bt.raw_aio_pika(
                        a.broker, a.messages, 1, a.rate, a.seconds)))
                print(f"run {run + 1}: " + "; ".join(
                    f"{k}: {v[-1]['throughput']:,.0f}/s" for k, v in rows.items()), flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("throughput", "p50", "p99")}
           for k, v in rows.items()}
    print(f"\nbroker {a.broker}, medians of {a.runs} runs")
    print("| path | messages/s | p50 ms at 1,000/s | p99 ms at 1,000/s | ratio to the baseline |")
    print("|---|---|---|---|---|")
    alone = med.get("raw aio-pika", med["broker alone"])["throughput"]
    for k, m in med.items():
        print(f"| {k} | {m['throughput']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | "
              f"{m['throughput'] / alone:.2f} |")


if __name__ == "__main__":
    main()

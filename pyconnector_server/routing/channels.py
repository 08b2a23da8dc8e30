"""Rule channels: a started rule reads its input, applies its filters to each message and
publishes what passes to its output.

A rule reading an exchange (``Direct`` or ``Topic`` input) gets a queue of its own,
``t<tenant>.rule.<id>``, bound to that exchange with the rule's key, so nothing that
arrives while the channel is busy is lost (on RabbitMQ the queue is durable: a broker
restart keeps it). A ``Queue`` input consumes the tenant's queue itself. One consumer
per rule keeps messages in order; ``parallelismFactor`` is kept and shown, not used.

A message is an SOS observation item (``{"sensor", "feature", "record": […]}``) or a
TCUP insert body (``{"observations": [items]}``); what passes keeps the shape it came
in. Each channel counts messages in, messages with at least one passing record
(matched) and messages published (out), and adds them to the rule's row every few
seconds and when it stops.

On ``amq.topic``, the exchange MQTT messages land on and every tenant shares, a rule's
topic is read under the tenant's routing key: ``Topic: "plant.#"`` binds
``<routing key>.plant.#``, so an MQTT device publishes to ``<routing key>/plant/…``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from ..auth import Tenant
from ..backends.broker.base import Consumer, Delivery
from ..deps import call
from ..errors import APIError
from .bodies import SHARED_EXCHANGE, RuleIn
from .engine import compile_rule
from .live import DIRECT, Live, broker_errors, physical

log = logging.getLogger("pyconnector.routing")

FLUSH_SECONDS = 2.0  # how often a channel adds its counts to the rule's row
RULE_QUEUE_MAX = 100_000  # messages a rule's own queue holds before the oldest drop
PREFETCH = 200


class Channel:
    """One started rule (see the module docstring)."""

    def __init__(self, live: Live, t: Tenant, rule_id: int, spec: RuleIn) -> None:
        self.live = live
        self.t = t
        self.rule_id = rule_id
        self.spec = spec
        self.rule = compile_rule(spec)
        self.counts = [0, 0, 0]  # in, matched, out: not yet in the row
        self.own_queue: str | None = None
        self.task: asyncio.Task[None] | None = None

    async def _input(self) -> tuple[str, str | None, str]:
        """The queue to consume and, for an exchange input, the exchange and key to bind."""
        given = self.spec.input
        if given.type == "Queue":
            return await self.live.queue(self.t, given.MQName, "input.MQName"), None, ""
        queue = physical(self.t.id, f"rule.{self.rule_id}")
        if given.type == "Direct":
            name, key = given.DirectExchange, given.RoutingKey
            field = "input.DirectExchange"
        else:
            name, key = given.TopicExchange, given.Topic
            field = "input.TopicExchange"
        if name == SHARED_EXCHANGE:  # the tenant's part of it: under its routing key
            return queue, SHARED_EXCHANGE, f"{await self.live.routing_key(self.t)}.{key}"
        exchange, _kind = await self.live.exchange(self.t, name, field)
        return queue, exchange, key

    async def _output(self) -> tuple[str, str]:
        out = self.spec.output
        if out.TopicExchange == SHARED_EXCHANGE:  # MQTT subscribers see it (mqtt_bridge.py)
            return SHARED_EXCHANGE, f"{await self.live.routing_key(self.t)}.{out.Topic}"
        exchange, _kind = await self.live.exchange(self.t, out.TopicExchange,
                                                   "output.TopicExchange")
        return exchange, out.Topic

    async def start(self) -> None:
        """Declare the rule's queue and bindings, and run the channel."""
        queue, exchange, key = await self._input()
        output = await self._output()
        with broker_errors():
            if exchange is not None:
                await self.live.broker.declare_queue(queue, RULE_QUEUE_MAX)
                self.own_queue = queue
                await self.live.broker.bind(queue, exchange, key)
            consumer = await self.live.broker.consume(queue, PREFETCH)
        self.task = asyncio.create_task(self._run(consumer, output))

    async def _run(self, consumer: Consumer, output: tuple[str, str]) -> None:
        flusher = asyncio.create_task(self._flush_every())
        try:
            async with consumer:
                async for delivery in consumer:
                    await self._handle(delivery, *output)
        except asyncio.CancelledError:
            raise
        except Exception:  # the broker went: the channel stops, its status says Running
            log.exception("rule %s: channel stopped", self.rule_id)
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher

    async def _handle(self, delivery: Delivery, exchange: str, topic: str) -> None:
        self.counts[0] += 1
        try:
            message = orjson.loads(delivery.body)
        except orjson.JSONDecodeError:
            message = None  # not an observation: it cannot pass
        passed = self.rule.apply_message(message) if message is not None else None
        if passed is not None:
            self.counts[1] += 1
            await self.live.publish(exchange, topic, passed)
            self.counts[2] += 1
        await delivery.ack()  # after the output has it: at least once

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    async def flush(self) -> None:
        counts, self.counts = self.counts, [0, 0, 0]
        if any(counts):
            await call(self.live.store.add_counts, self.rule_id, *counts)

    async def stop(self) -> None:
        """Stop consuming, record the counts, and drop the rule's own queue."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.flush()
        if self.own_queue is not None:
            with contextlib.suppress(Exception):  # gone with the broker: nothing to drop
                await self.live.broker.delete_queue(self.own_queue)


class Channels:
    """The running channels of every tenant's rules."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.running: dict[int, Channel] = {}
        self.lock = asyncio.Lock()

    async def start(self, t: Tenant, rule_id: int) -> dict[str, Any]:
        async with self.lock:
            spec, status = await call(self.live.store.rule_spec, t, rule_id)
            if rule_id in self.running:
                raise APIError(409, f"rule {rule_id}: its channel is running already")
            channel = Channel(self.live, t, rule_id, spec)
            await channel.start()
            self.running[rule_id] = channel
            await call(self.live.store.set_status, rule_id, "Running")
        return {"code": 200, "message": f"rule {rule_id}: channel started",
                "RuleID": rule_id, "Status": "Running"}

    async def stop(self, t: Tenant, rule_id: int, status: str = "Stopped") -> dict[str, Any]:
        async with self.lock:
            await call(self.live.store.rule_spec, t, rule_id)  # 404 for another tenant
            channel = self.running.pop(rule_id, None)
            if channel is not None:
                await channel.stop()
            await call(self.live.store.set_status, rule_id, status)
        return {"code": 200, "message": f"rule {rule_id}: channel stopped",
                "RuleID": rule_id, "Status": status}

    async def restore(self) -> None:
        """Start again the channels that ran when the platform stopped."""
        for t, rule_id in await call(self.live.store.running):
            try:
                await self.start(t, rule_id)
            except APIError as exc:  # its exchange went meanwhile: say so, keep starting
                log.warning("rule %s: channel not restarted: %s", rule_id, exc.message)
                await call(self.live.store.set_status, rule_id, "Stopped")

    async def close(self) -> None:
        """Stop every channel (the platform stops); their rules stay Running."""
        for channel in list(self.running.values()):
            await channel.stop()
        self.running.clear()


__all__ = ["DIRECT", "Channel", "Channels"]

"""Message Routing HTTP, SSE and WebSocket routes under ``/MessageRouting/v2.0`` (TCUP's
base path). Real HTTP statuses (TCUP's MR lists 200/400/403/404/500, not SOS's "200 with
the code in the body").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, WebSocket
from pydantic import BaseModel, Field
from starlette.responses import StreamingResponse

from ..auth import Tenant
from ..backends.broker.base import BrokerNotFound, Consumer
from ..bodies import json_body
from ..checks import MAX_COUNT
from ..deps import Auth, call, state
from ..errors import APIError, not_found
from ..openapi import answers, errors
from . import stream
from .bodies import SHARED_EXCHANGE, RuleIn, RuleUpdate, description, rule_name, updated
from .live import DIRECT, Live, broker_errors, physical
from .wire import BindingIn, ExchangeIn, PublishIn, QueueIn, key, name

PREFIX = "/MessageRouting/v2.0"
MAX_PULL = 1000  # messages one GET /queues/{name}/messages may take
PULL_WAIT_SECONDS = 2.0  # for a counted message to arrive before the pull gives up

router = APIRouter(prefix=PREFIX, tags=["Message Routing"])
Routing = Depends(state("routing", Live))


class Done(BaseModel):
    code: int
    message: str


class Exchange(BaseModel):
    exchangeName: str  # noqa: N815 - TCUP's names
    type: str
    createdOn: str  # noqa: N815


class Created(Exchange):
    code: int
    message: str


class RoutingKey(BaseModel):
    routingKey: str  # noqa: N815
    DirectExchange: str  # noqa: N815


class Queue(BaseModel):
    name: str
    maxLength: int | None  # noqa: N815
    createdOn: str  # noqa: N815
    messages: int = Field(description="Messages ready for delivery")


class Pulled(BaseModel):
    count: int
    messages: list[Any]


# -- exchanges ------------------------------------------------------------------------------
@router.post("/topicExchanges", summary="Create an exchange (topic by default)",
             responses=answers(Created, 200, "Created", 409))
async def create_exchange(t: Tenant = Auth, body: ExchangeIn = json_body(ExchangeIn, ""),
                          live: Live = Routing) -> Any:
    made = await live.create_exchange(t, body.exchangeName, body.type)
    return {"code": 200, "message": f"exchange {body.exchangeName!r} created", **made}


@router.get("/topicExchanges", summary="The tenant's exchanges",
            responses=answers(list[Exchange], 200, "The exchanges"))
async def list_exchanges(t: Tenant = Auth, live: Live = Routing) -> Any:
    return await call(live.store.exchanges, t)


@router.delete("/topicExchanges/{exchangeName}", summary="Delete an exchange no rule uses",
               responses=answers(Done, 200, "Deleted", 404, 409))
async def delete_exchange(exchangeName: str, t: Tenant = Auth,  # noqa: N803 - TCUP's name
                          live: Live = Routing) -> Any:
    name(exchangeName, "exchangeName")
    users = await call(live.store.uses_exchange, t, exchangeName)
    if users:
        raise APIError(409, f"exchange {exchangeName!r} is used by rule(s) "
                       f"{', '.join(map(repr, users[:5]))}: delete or change them first")
    await live.delete_exchange(t, exchangeName)
    return {"code": 200, "message": f"exchange {exchangeName!r} deleted"}


@router.get("/topicExchanges/{exchangeName}/topics",
            summary="Topics the tenant's rules publish to on an exchange",
            responses=answers(list[str], 200, "The topics", 404))
async def exchange_topics(exchangeName: str, t: Tenant = Auth,  # noqa: N803 - TCUP's name
                          live: Live = Routing) -> Any:
    await live.exchange(t, name(exchangeName, "exchangeName"), "exchangeName")
    rules = await call(live.store.rules, t)
    return sorted({r["output"]["Topic"] for r in rules
                   if r["output"]["TopicExchange"] == exchangeName})


@router.get("/routingKey", summary="The tenant's routing key on its direct exchange",
            responses=answers(RoutingKey, 200, "Where the tenant's observations enter"))
async def routing_key(t: Tenant = Auth, live: Live = Routing) -> Any:
    await live.direct(t)
    return {"routingKey": await call(live.store.routing_key, t), "DirectExchange": DIRECT}


# -- rules ----------------------------------------------------------------------------------
RuleId = Path(ge=1, le=MAX_COUNT, description="The rule's RuleID")


class Rule(BaseModel):
    """A rule: its TCUP JSON and what the platform adds."""

    RuleID: int  # noqa: N815 - TCUP's names
    RuleName: str  # noqa: N815
    RuleDescription: str  # noqa: N815
    parallelismFactor: int  # noqa: N815
    input: dict[str, Any]
    params: list[dict[str, Any]]
    output: dict[str, Any]
    Status: str = Field(description="Created, Running or Stopped")  # noqa: N815
    counts: dict[str, int] = Field(description="Messages in, matched and out")
    createdOn: str  # noqa: N815
    updatedOn: str  # noqa: N815


class RuleCreated(Rule):
    code: int
    message: str


class ChannelState(BaseModel):
    code: int
    message: str
    RuleID: int  # noqa: N815
    Status: str  # noqa: N815


async def _check_ends(live: Live, t: Tenant, spec: RuleIn) -> None:
    """The exchanges and queue a rule names are the tenant's (404 naming the field)."""
    given = spec.input
    if given.type == "Queue":
        await live.queue(t, given.MQName, "input.MQName")
    for field, value in (("input.DirectExchange", given.DirectExchange),
                         ("input.TopicExchange", given.TopicExchange),
                         ("output.TopicExchange", spec.output.TopicExchange)):
        if value and value not in (DIRECT, SHARED_EXCHANGE):
            await live.exchange(t, value, field)


@router.post("/routingRules", summary="Create a routing rule (TCUP rule JSON)",
             responses=answers(RuleCreated, 200, "Created: RuleID names it", 404, 409))
async def create_rule(t: Tenant = Auth, body: RuleIn = json_body(RuleIn, ""),
                      live: Live = Routing) -> Any:
    await _check_ends(live, t, body)
    made = await call(live.store.add_rule, t, body)
    return {"code": 200, "message": f"rule {body.RuleName!r} created", **made}


@router.get("/routingRules", summary="The tenant's rules (optionally by name or description)",
            responses=answers(list[Rule], 200, "The rules"))
async def list_rules(RuleName: str | None = Query(None, max_length=128),  # noqa: N803
                     RuleDescription: str | None = Query(None, max_length=1024),  # noqa: N803
                     t: Tenant = Auth, live: Live = Routing) -> Any:
    # The body's checks (a NUL, which PostgreSQL refuses in text, is a 400 here too).
    name = rule_name(RuleName, "RuleName") if RuleName else None
    text = description(RuleDescription, "RuleDescription") if RuleDescription else None
    return await call(live.store.rules, t, name, text)


@router.get("/routingRules/{rule_id}", summary="A rule, with its status and counts",
            responses=answers(Rule, 200, "The rule", 404))
async def get_rule(rule_id: int = RuleId, t: Tenant = Auth, live: Live = Routing) -> Any:
    return await call(live.store.rule, t, rule_id)


@router.put("/routingRules/{rule_id}", summary="Change a stopped rule (the fields given)",
            responses=answers(Rule, 200, "The rule as changed", 404, 409))
async def update_rule(rule_id: int = RuleId, t: Tenant = Auth,
                      body: RuleUpdate = json_body(RuleUpdate, ""),
                      live: Live = Routing) -> Any:
    spec, _status = await call(live.store.rule_spec, t, rule_id)
    new = updated(spec, body)
    await _check_ends(live, t, new)
    return await call(live.store.replace_rule, t, rule_id, new)


@router.delete("/routingRules/{rule_id}", summary="Delete a rule (its channel stops)",
               responses=answers(Done, 200, "Deleted", 404))
async def delete_rule(rule_id: int = RuleId, t: Tenant = Auth, live: Live = Routing) -> Any:
    await live.channels.stop(t, rule_id)
    await call(live.store.remove_rule, t, rule_id)
    return {"code": 200, "message": f"rule {rule_id} deleted"}


@router.post("/routingChannel/{rule_id}/start", summary="Start a rule's channel",
             responses=answers(ChannelState, 200, "Running", 404, 409))
async def start_channel(rule_id: int = RuleId, t: Tenant = Auth,
                        live: Live = Routing) -> Any:
    return await live.channels.start(t, rule_id)


@router.post("/routingChannel/{rule_id}/stop", summary="Stop a rule's channel",
             responses=answers(ChannelState, 200, "Stopped", 404))
async def stop_channel(rule_id: int = RuleId, t: Tenant = Auth, live: Live = Routing) -> Any:
    return await live.channels.stop(t, rule_id)


# -- publishing -----------------------------------------------------------------------------
@router.post("/publish", summary="Publish a message (SendRequestExchange)",
             description="To a queue, to an exchange with a topic, or (neither given) to the "
             "tenant's direct exchange with its routing key, where observations enter rules.",
             responses=answers(Done, 200, "The broker has the message", 404))
async def publish(t: Tenant = Auth, body: PublishIn = json_body(PublishIn, ""),
                  live: Live = Routing) -> Any:
    exchange, rkey = await stream.target(live, t, body)
    await live.publish(exchange, rkey, body.message)
    return {"code": 200, "message": "published"}


# -- queues ---------------------------------------------------------------------------------
@router.post("/queues", summary="Declare a queue", responses=answers(Queue, 200, "Declared",
                                                                      409))
async def create_queue(t: Tenant = Auth, body: QueueIn = json_body(QueueIn, ""),
                       live: Live = Routing) -> Any:
    made = await live.create_queue(t, body.name, body.maxLength)
    return {**made, "messages": 0}


@router.get("/queues", summary="The tenant's queues, with their message counts",
            responses=answers(list[Queue], 200, "The queues"))
async def list_queues(t: Tenant = Auth, live: Live = Routing) -> Any:
    out = []
    for q in await call(live.store.queues, t):
        try:
            count = await live.broker.queue_length(physical(t.id, q["name"]))
        except BrokerNotFound:
            count = 0
        out.append({**q, "messages": count})
    return out


@router.get("/queues/{queue}", summary="A queue and its message count",
            responses=answers(Queue, 200, "The queue", 404))
async def get_queue(queue: str, t: Tenant = Auth, live: Live = Routing) -> Any:
    name(queue, "queue")
    for q in await call(live.store.queues, t):
        if q["name"] == queue:
            return {**q, "messages": await live.queue_length(t, queue)}
    raise not_found(f"queue {queue!r}")


@router.delete("/queues/{queue}", summary="Delete a queue and its messages",
               responses=answers(Done, 200, "Deleted", 404))
async def delete_queue(queue: str, t: Tenant = Auth, live: Live = Routing) -> Any:
    await live.delete_queue(t, name(queue, "queue"))
    return {"code": 200, "message": f"queue {queue!r} deleted"}


@router.post("/queues/{queue}/purge", summary="Drop a queue's ready messages",
             responses=answers(Done, 200, "Purged (message says how many)", 404))
async def purge_queue(queue: str, t: Tenant = Auth, live: Live = Routing) -> Any:
    q = await live.queue(t, name(queue, "queue"))
    with broker_errors():
        n = await live.broker.purge_queue(q)
    return {"code": 200, "message": f"{n} message(s) purged"}


@router.post("/queues/{queue}/bindings", summary="Bind a queue to an exchange's topic",
             responses=answers(Done, 200, "Bound", 404))
async def bind_queue(queue: str, t: Tenant = Auth,
                     body: BindingIn = json_body(BindingIn, ""), live: Live = Routing) -> Any:
    q = await live.queue(t, name(queue, "queue"))
    exchange, _ = await live.exchange(t, body.exchange)
    with broker_errors():
        await live.broker.bind(q, exchange, body.topic)
    await call(live.store.add_binding, t, queue, body.exchange, body.topic)
    return {"code": 200, "message": f"queue {queue!r} bound to {body.exchange!r} "
            f"({body.topic})"}


@router.get("/queues/{queue}/messages", summary="Take messages from a queue",
            description="Up to max messages ready now, acknowledged as they are answered. "
            "For delivery that waits for the client's acknowledgement use the WebSocket.",
            responses=answers(Pulled, 200, "The messages taken", 404))
async def pull(queue: str, max: int = Query(1, ge=1, le=MAX_PULL),  # noqa: A002
               t: Tenant = Auth, live: Live = Routing) -> Any:
    q = await live.queue(t, name(queue, "queue"))
    out: list[Any] = []
    with broker_errors():
        # What is ready now (a consumer's prefetch moves messages out of the ready count).
        wanted = min(max, await live.broker.queue_length(q))
        if wanted:
            async with live.broker.consume(q, min(wanted, stream.PREFETCH)) as consumer:
                while len(out) < wanted:
                    delivery = await stream.next_or_none(consumer, PULL_WAIT_SECONDS)
                    if delivery is None:  # taken by another consumer meanwhile
                        break
                    out.append(stream.decode(delivery.body))
                    await delivery.ack()
    return {"count": len(out), "messages": out}


# -- streams --------------------------------------------------------------------------------
SSE = {200: {"description": "text/event-stream: one event per message", "content": {
    "text/event-stream": {"schema": {"type": "string"}}}}}


@router.get("/sse", summary="Stream an exchange's topic, or a queue, as Server-Sent Events",
            responses={**SSE, **errors(404)})
async def sse(exchange: str | None = None, topic: str = "#", queue: str | None = None,
              t: Tenant = Auth, live: Live = Routing) -> Any:
    reader = await stream.open_reader(
        live, t, None if exchange is None else name(exchange, "exchange"), key(topic, "topic"),
        None if queue is None else name(queue, "queue"))
    if isinstance(reader, Consumer):
        body = stream.sse_queue(reader, f"queue {queue}")
    else:
        body = stream.sse_exchange(reader, f"{exchange} {topic}")
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


@router.websocket("/ws")
async def websocket(ws: WebSocket, t: Tenant = Auth, live: Live = Routing) -> None:
    """Publish and subscribe over one connection (frames: see ``wire.Frame``)."""
    await ws.accept()
    await stream.Session(ws, t, live).run()


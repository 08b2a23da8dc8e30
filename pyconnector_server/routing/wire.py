"""What clients send Message Routing besides rules: exchanges, queues, publishes, and the
WebSocket's frames. Typed like every body (:mod:`pyconnector_server.bodies`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from ..bodies import Model, rule
from .bodies import EXCHANGE_SCHEMA, KEY_MAX, or_empty, queue, routing_key

# Rules and these bodies share one set of checks (bodies.py): an exchange or queue a client
# declares or names here is never the broker's own (``amq.``); a routing key may be empty
# (a fanout exchange's, or a direct exchange's empty key).
name = queue
key = or_empty(routing_key)

Name = Annotated[str, rule(name), WithJsonSchema(EXCHANGE_SCHEMA)]
Key = Annotated[str, rule(key), WithJsonSchema(
    {"type": "string", "maxLength": KEY_MAX, "description": "Words separated by '.'"})]
ExchangeKind = Literal["topic", "direct", "fanout"]


class ExchangeIn(Model):
    """A new exchange of the tenant (TCUP: ``{"exchangeName": "DemoExchange", "type":
    "topic"}``)."""

    exchangeName: Name  # noqa: N815 - TCUP's name
    type: ExchangeKind = "topic"


class QueueIn(Model):
    """A new queue of the tenant; ``maxLength`` keeps at most that many messages (the
    oldest go first)."""

    name: Name
    maxLength: int | None = Field(None, ge=1, le=1_000_000)  # noqa: N815


class BindingIn(Model):
    """Route what an exchange of the tenant gets with a matching topic into a queue."""

    exchange: Name
    topic: Key = "#"


class Target(Model):
    """Where a message goes: a queue; an exchange with a topic (routing key); or, with
    neither, the tenant's direct exchange with its routing key, where observations enter
    routing."""

    exchange: Name | None = None
    topic: Key | None = Field(None, description="The routing key (alias routingKey)")
    routingKey: Key | None = None  # noqa: N815 - TCUP's name
    queue: Name | None = None


class PublishIn(Target):
    """A message to publish (any JSON; observations in the SOS shape enter rules)."""

    message: Any = Field(description="The message: any JSON value")


class Frame(Model):
    """A WebSocket frame from the client.

    - ``{"action": "publish", "message": …, "exchange"/"topic"/"queue": …}``, or
      ``"messages": [...]`` (up to 1000, published in order); answered with an ``ok``
      frame only when it has a ``ref``
    - ``{"action": "subscribe", "exchange": …, "topic": "a.*"}`` (``"batch": n``: up to
      n messages per ``messages`` frame) or ``{"action": "subscribe", "queue": …}``
      (queue messages wait for an ``ack``)
    - ``{"action": "ack", "id": <subscription>, "tag": <delivery>}``
    - ``{"action": "unsubscribe", "id": <subscription>}``
    """

    action: Literal["publish", "subscribe", "unsubscribe", "ack", "nack"]
    exchange: Name | None = None
    topic: Key | None = None
    routingKey: Key | None = None  # noqa: N815
    queue: Name | None = None
    message: Any = None
    messages: list[Any] | None = Field(None, min_length=1, max_length=1000)
    batch: int | None = Field(None, ge=1, le=1000)
    id: int | None = Field(None, ge=0)
    tag: int | None = Field(None, ge=0)
    ref: str | None = Field(None, max_length=64, description="Echoed in the answer")

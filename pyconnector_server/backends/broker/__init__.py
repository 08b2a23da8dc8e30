"""Message brokers for routing, by URL: ``memory://`` (the default, an in-process router
with AMQP semantics) and ``amqp://user:password@host:5672/vhost`` (RabbitMQ).

A new broker registers itself with ``@brokers.register("<scheme>")`` and is imported
below; see docs/contributing.md, "Adding a backend".
"""

from __future__ import annotations

from ..registry import UnknownBackend
from . import amqp, memory  # noqa: F401 - imported for their registration
from .base import (
    EXCHANGE_KINDS,
    Broker,
    BrokerConflict,
    BrokerNotFound,
    Consumer,
    Delivery,
    Message,
    Subscription,
    brokers,
)
from .topic import topic_matches

__all__ = ["EXCHANGE_KINDS", "Broker", "BrokerConflict", "BrokerNotFound", "Consumer",
           "Delivery", "Message", "Subscription", "UnknownBackend", "brokers", "open_broker",
           "topic_matches"]

DEFAULT_URL = "memory://"


def open_broker(url: str = "") -> Broker:
    """The broker a URL names: ``""`` or ``memory://`` → the embedded router;
    ``amqp://…``/``amqps://…`` → RabbitMQ (connecting at first use). An unknown scheme
    raises :class:`UnknownBackend` (a :class:`ValueError`) listing the known ones."""
    return brokers.open(url or DEFAULT_URL)

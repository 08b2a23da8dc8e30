"""Message Routing tables, in the platform's shared metadata.

Exchanges and rules are the tenant's objects; the broker holds the live exchanges,
queues and bindings, rebuilt from these rows when the platform starts (the embedded
router keeps nothing across a restart).
"""

from __future__ import annotations

import sqlalchemy as sa

from ..db import metadata

_fk = dict(ondelete="CASCADE")

# A tenant's topic exchanges (TCUP: POST /topicExchanges).
exchange = sa.Table(
    "routing_exchange", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

# A routing rule: its TCUP JSON as given (checked), its channel's status, its counts.
rule = sa.Table(
    "routing_rule", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("messages_in", sa.BigInteger, nullable=False, default=0),
    sa.Column("matched", sa.BigInteger, nullable=False, default=0),
    sa.Column("messages_out", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

# A tenant's queues (declared through the platform; the broker holds their messages).
queue = sa.Table(
    "routing_queue", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("max_length", sa.Integer),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

# A queue's bindings (declared through the platform), to bind again at start.
binding = sa.Table(
    "routing_binding", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("queue_id", sa.Integer, sa.ForeignKey("routing_queue.id", **_fk),
              nullable=False),
    sa.Column("exchange", sa.String(128), nullable=False),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.UniqueConstraint("queue_id", "exchange", "topic"),
)

# The tenant's routing key on its direct exchange (TCUP: "Get Associated routing key").
routing_key = sa.Table(
    "routing_key", metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), primary_key=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
)

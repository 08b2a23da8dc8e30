"""What Message Routing keeps in the database: each tenant's exchanges, queues and
routing key. Blocking calls (run them through :func:`pyconnector_server.deps.call`).

The broker holds the live exchanges, queues and messages; these rows say which belong to
which tenant (a tenant only ever names its own) and let the platform declare them again
when it starts (the embedded router keeps nothing across a restart).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pyconnector.times import format_tcup

from ..auth import Tenant
from ..clock import now_ms
from ..db import Database
from ..errors import APIError, not_found
from .tables import exchange, queue, routing_key


@dataclass(frozen=True)
class Owned:
    """A broker object of a tenant, as the platform declares it at start."""

    tenant_id: int
    name: str
    kind: str  # an exchange's kind, or "queue"
    max_length: int | None = None


class RoutingStore:
    """Tenant-scoped rows of the routing tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the tenant's routing key ----------------------------------------------------------
    def routing_key(self, t: Tenant) -> str:
        """The tenant's routing key on its direct exchange, made on first use."""
        with self.db.write() as conn:
            key = conn.execute(sa.select(routing_key.c.key).where(
                routing_key.c.tenant_id == t.id)).scalar()
            if key is None:
                key = secrets.token_hex(16)
                conn.execute(sa.insert(routing_key).values(tenant_id=t.id, key=key))
        return str(key)

    # -- exchanges -------------------------------------------------------------------------
    def add_exchange(self, t: Tenant, name: str, kind: str) -> dict[str, Any]:
        with self.db.write() as conn:
            if conn.execute(sa.select(exchange.c.id).where(
                    exchange.c.tenant_id == t.id, exchange.c.name == name)).first():
                raise APIError(409, f"exchange {name!r} already exists", field="exchangeName")
            ts = now_ms()
            conn.execute(sa.insert(exchange).values(tenant_id=t.id, name=name, kind=kind,
                                                    created_ms=ts))
        return {"exchangeName": name, "type": kind, "createdOn": format_tcup(ts)}

    def remove_exchange(self, t: Tenant, name: str) -> None:
        with self.db.write() as conn:
            n = conn.execute(sa.delete(exchange).where(
                exchange.c.tenant_id == t.id, exchange.c.name == name)).rowcount
        if not n:
            raise not_found(f"exchange {name!r}")

    def exchange_kind(self, t: Tenant, name: str) -> str | None:
        """The kind of the tenant's exchange ``name``; None if it has none by that name."""
        with self.db.read() as conn:
            return conn.execute(sa.select(exchange.c.kind).where(  # type: ignore[no-any-return]
                exchange.c.tenant_id == t.id, exchange.c.name == name)).scalar()

    def exchanges(self, t: Tenant) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(exchange).where(exchange.c.tenant_id == t.id)
                                .order_by(exchange.c.name)).all()
        return [{"exchangeName": r.name, "type": r.kind, "createdOn": format_tcup(r.created_ms)}
                for r in rows]

    # -- queues ----------------------------------------------------------------------------
    def add_queue(self, t: Tenant, name: str, max_length: int | None) -> dict[str, Any]:
        with self.db.write() as conn:
            if conn.execute(sa.select(queue.c.id).where(
                    queue.c.tenant_id == t.id, queue.c.name == name)).first():
                raise APIError(409, f"queue {name!r} already exists", field="name")
            ts = now_ms()
            conn.execute(sa.insert(queue).values(tenant_id=t.id, name=name,
                                                 max_length=max_length, created_ms=ts))
        return {"name": name, "maxLength": max_length, "createdOn": format_tcup(ts)}

    def remove_queue(self, t: Tenant, name: str) -> None:
        with self.db.write() as conn:
            n = conn.execute(sa.delete(queue).where(
                queue.c.tenant_id == t.id, queue.c.name == name)).rowcount
        if not n:
            raise not_found(f"queue {name!r}")

    def has_queue(self, t: Tenant, name: str) -> bool:
        with self.db.read() as conn:
            return conn.execute(sa.select(queue.c.id).where(
                queue.c.tenant_id == t.id, queue.c.name == name)).first() is not None

    def queues(self, t: Tenant) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(queue).where(queue.c.tenant_id == t.id)
                                .order_by(queue.c.name)).all()
        return [{"name": r.name, "maxLength": r.max_length,
                 "createdOn": format_tcup(r.created_ms)} for r in rows]

    # -- at start -------------------------------------------------------------------------
    def owned(self) -> list[Owned]:
        """Every tenant's exchanges and queues, to declare on the broker at start."""
        with self.db.read() as conn:
            exchanges = conn.execute(sa.select(exchange.c.tenant_id, exchange.c.name,
                                               exchange.c.kind)).all()
            queues = conn.execute(sa.select(queue.c.tenant_id, queue.c.name,
                                            queue.c.max_length)).all()
        return ([Owned(r.tenant_id, r.name, r.kind) for r in exchanges]
                + [Owned(r.tenant_id, r.name, "queue", r.max_length) for r in queues])

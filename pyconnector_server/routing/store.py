"""What Message Routing keeps in the database: each tenant's exchanges, queues, rules and
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
from ..db import Database, tenant
from ..errors import APIError, not_found
from .bodies import RuleIn
from .tables import binding, exchange, queue, routing_key, rule


@dataclass(frozen=True)
class Owned:
    """A broker object of a tenant, as the platform declares it at start."""

    tenant_id: int
    name: str
    kind: str  # an exchange's kind, "queue", or "binding"
    max_length: int | None = None
    exchange: str = ""  # a binding's exchange (the tenant's name) and topic
    topic: str = ""


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
            mine = sa.select(queue.c.id).where(queue.c.tenant_id == t.id)
            conn.execute(sa.delete(binding).where(binding.c.exchange == name,
                                                  binding.c.queue_id.in_(mine)))
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

    def add_binding(self, t: Tenant, queue_name: str, exchange_name: str, topic: str) -> None:
        """Record that the tenant's queue is bound to its exchange with ``topic``."""
        with self.db.write() as conn:
            qid = conn.execute(sa.select(queue.c.id).where(
                queue.c.tenant_id == t.id, queue.c.name == queue_name)).scalar()
            if qid is None:
                raise not_found(f"queue {queue_name!r}")
            if conn.execute(sa.select(binding.c.id).where(
                    binding.c.queue_id == qid, binding.c.exchange == exchange_name,
                    binding.c.topic == topic)).first() is None:
                conn.execute(sa.insert(binding).values(queue_id=qid, exchange=exchange_name,
                                                       topic=topic))

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

    # -- rules ----------------------------------------------------------------------------
    @staticmethod
    def _rule_out(r: Any) -> dict[str, Any]:
        """A rule as TCUP lists it: its JSON plus ``RuleID``, ``Status`` and counts."""
        return {**r.spec, "RuleID": r.id, "Status": r.status,
                "counts": {"in": r.messages_in, "matched": r.matched, "out": r.messages_out},
                "createdOn": format_tcup(r.created_ms), "updatedOn": format_tcup(r.updated_ms)}

    def _rule_row(self, conn: sa.Connection, t: Tenant, rule_id: int) -> Any:
        row = conn.execute(sa.select(rule).where(rule.c.tenant_id == t.id,
                                                 rule.c.id == rule_id)).first()
        if row is None:
            raise not_found(f"rule {rule_id}")
        return row

    def _name_taken(self, conn: sa.Connection, t: Tenant, name: str,
                    other_than: int | None = None) -> None:
        q = sa.select(rule.c.id).where(rule.c.tenant_id == t.id, rule.c.name == name)
        if other_than is not None:
            q = q.where(rule.c.id != other_than)
        if conn.execute(q).first():
            raise APIError(409, f"RuleName: a rule named {name!r} exists", field="RuleName")

    def add_rule(self, t: Tenant, spec: RuleIn) -> dict[str, Any]:
        with self.db.write() as conn:
            self._name_taken(conn, t, spec.RuleName)
            ts = now_ms()
            rule_id = conn.execute(sa.insert(rule).values(
                tenant_id=t.id, name=spec.RuleName, description=spec.RuleDescription,
                spec=_spec(spec), status="Created", messages_in=0, matched=0,
                messages_out=0, created_ms=ts, updated_ms=ts)).inserted_primary_key[0]
            return self._rule_out(self._rule_row(conn, t, rule_id))

    def rule(self, t: Tenant, rule_id: int) -> dict[str, Any]:
        with self.db.read() as conn:
            return self._rule_out(self._rule_row(conn, t, rule_id))

    def rule_spec(self, t: Tenant, rule_id: int) -> tuple[RuleIn, str]:
        """A rule's checked JSON and status."""
        with self.db.read() as conn:
            row = self._rule_row(conn, t, rule_id)
        return RuleIn.model_validate(row.spec), row.status

    def rules(self, t: Tenant, name: str | None = None, description: str | None = None
              ) -> list[dict[str, Any]]:
        q = sa.select(rule).where(rule.c.tenant_id == t.id).order_by(rule.c.id)
        if name:
            q = q.where(rule.c.name == name)
        if description:
            q = q.where(rule.c.description == description)
        with self.db.read() as conn:
            return [self._rule_out(r) for r in conn.execute(q).all()]

    def replace_rule(self, t: Tenant, rule_id: int, spec: RuleIn) -> dict[str, Any]:
        with self.db.write() as conn:
            row = self._rule_row(conn, t, rule_id)
            if row.status == "Running":
                raise APIError(409, f"rule {rule_id} is running: stop its channel first")
            self._name_taken(conn, t, spec.RuleName, other_than=rule_id)
            conn.execute(sa.update(rule).where(rule.c.id == rule_id).values(
                name=spec.RuleName, description=spec.RuleDescription, spec=_spec(spec),
                updated_ms=now_ms()))
            return self._rule_out(self._rule_row(conn, t, rule_id))

    def remove_rule(self, t: Tenant, rule_id: int) -> None:
        with self.db.write() as conn:
            self._rule_row(conn, t, rule_id)
            conn.execute(sa.delete(rule).where(rule.c.id == rule_id))

    def set_status(self, rule_id: int, status: str) -> None:
        with self.db.write() as conn:
            conn.execute(sa.update(rule).where(rule.c.id == rule_id).values(
                status=status, updated_ms=now_ms()))

    def add_counts(self, rule_id: int, messages_in: int, matched: int, out: int) -> None:
        """Add a running channel's counts (it flushes them every few seconds)."""
        with self.db.write() as conn:
            conn.execute(sa.update(rule).where(rule.c.id == rule_id).values(
                messages_in=rule.c.messages_in + messages_in,
                matched=rule.c.matched + matched,
                messages_out=rule.c.messages_out + out))

    def running(self) -> list[tuple[Tenant, int]]:
        """Every rule whose channel runs (to start again at start), with its tenant."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(rule.c.id, tenant.c.id.label("tid"),
                                          tenant.c.name, tenant.c.jwt_secret)
                                .join(tenant, tenant.c.id == rule.c.tenant_id)
                                .where(rule.c.status == "Running")).all()
        return [(Tenant(r.tid, r.name, r.jwt_secret), r.id) for r in rows]

    def uses_exchange(self, t: Tenant, name: str) -> list[str]:
        """Names of the tenant's rules reading from or writing to exchange ``name``."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(rule.c.name, rule.c.spec).where(
                rule.c.tenant_id == t.id)).all()
        return [r.name for r in rows
                if name in (r.spec["output"]["TopicExchange"],
                            r.spec["input"].get("TopicExchange"),
                            r.spec["input"].get("DirectExchange"))]

    # -- at start -------------------------------------------------------------------------
    def owned(self) -> list[Owned]:
        """Every tenant's exchanges, queues and bindings (in that order), to declare on the
        broker at start."""
        with self.db.read() as conn:
            exchanges = conn.execute(sa.select(exchange.c.tenant_id, exchange.c.name,
                                               exchange.c.kind)).all()
            queues = conn.execute(sa.select(queue.c.tenant_id, queue.c.name,
                                            queue.c.max_length)).all()
            bindings = conn.execute(sa.select(queue.c.tenant_id, queue.c.name,
                                              binding.c.exchange, binding.c.topic)
                                    .join(queue, queue.c.id == binding.c.queue_id)).all()
        return ([Owned(r.tenant_id, r.name, r.kind) for r in exchanges]
                + [Owned(r.tenant_id, r.name, "queue", r.max_length) for r in queues]
                + [Owned(r.tenant_id, r.name, "binding", exchange=r.exchange, topic=r.topic)
                   for r in bindings])


def _spec(spec: RuleIn) -> dict[str, Any]:
    """A rule's JSON as stored: what was given, checked, in TCUP's key names."""
    return spec.model_dump(mode="json", by_alias=True)

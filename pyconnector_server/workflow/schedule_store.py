"""What the workflow scheduler reads and writes: definitions whose next slot has come, and
the compare-and-set that claims a slot. Blocking calls (run them through
:func:`pyconnector_server.deps.call`).

Not scoped to a tenant: the scheduler serves every tenant, with ids read from these
tables; the routes set a schedule through the tenant-scoped
:meth:`.WorkflowStore.update_definition`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..auth import Tenant
from ..clock import now_ms
from ..db import Database
from ..db import tenant as tenant_table
from .tables import definition


class ScheduleStore:
    """The scheduler's calls on the ``workflow_definition`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def due(self, now: int, limit: int = 100) -> list[Any]:
        """Definitions whose schedule's next slot is at or before ``now``, earliest
        first."""
        with self.db.read() as conn:
            return list(conn.execute(sa.select(definition).where(
                definition.c.next_fire_ms.is_not(None), definition.c.next_fire_ms <= now)
                .order_by(definition.c.next_fire_ms).limit(limit)).all())

    def advance(self, definition_id: int, slot_ms: int, next_ms: int | None,
                fired: int) -> bool:
        """Move a definition's schedule past ``slot_ms`` - only if it is still at it
        (another process may have moved it, or the schedule was changed meanwhile);
        whether this call moved it."""
        with self.db.write() as conn:
            return bool(conn.execute(sa.update(definition).where(
                definition.c.id == definition_id,
                definition.c.next_fire_ms == slot_ms).values(
                    next_fire_ms=next_ms, fired=fired, updated_ms=now_ms())).rowcount)

    def tenant(self, tenant_id: int) -> Tenant | None:
        """The tenant a definition belongs to (None if it is gone)."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(tenant_table.c.id, tenant_table.c.name).where(
                tenant_table.c.id == tenant_id)).first()
        return None if row is None else Tenant(id=row.id, name=row.name)

"""Scheduled definitions: each slot of a definition's cron pattern prepares and initiates
a new instance of it (trigger ``schedule``).

A schedule is the Task Service's recurrent one (:mod:`pyconnector_server.tasks.schedule`:
``cronPatternType`` fixed/interval/cron and its fields, ``timeZone``, ``recurrenceLimit``),
and it fires the way :mod:`pyconnector_server.tasks.scheduler` fires a task's: every
:data:`TICK_SECONDS` the scheduler takes the definitions whose next slot has come
(``next_fire_ms``), moves each to its next slot - a compare-and-set on ``next_fire_ms``
that claims the slot, so with several platform processes on one database one of them
fires it - and then makes the slot's instance.

Missed slots (the platform was down) follow the same policy as tasks': a slot missed by
less than ``task_catch_up_seconds`` fires once when the platform is back (several
missed slots fire once, together); older ones are skipped and not counted against the
recurrence limit. A slot whose instance cannot be made (a task of the definition was
deleted or is not deployed) passes with a warning in the log, and counts.

Each slot makes its own instance, whether or not the previous one has ended: a
pattern faster than the pipeline runs overlapping instances (their steps are copies,
so they do not share files).
"""

from __future__ import annotations

import logging
from typing import Any

from ..auth import Tenant
from ..clock import now_ms
from ..deps import call
from ..errors import APIError
from ..tasks.schedule import Firing, following
from ..tasks.scheduler import TICK_SECONDS
from ..ticker import Ticker
from .engine import Engine
from .schedule_store import ScheduleStore

log = logging.getLogger("pyconnector.workflow")

__all__ = ["TICK_SECONDS", "Scheduler", "next_after", "start_instance"]


def next_after(row: Any, after_ms: int, fired: int | None = None) -> int | None:
    """The definition's slot after ``after_ms`` once ``fired`` slots have fired (default:
    the row's count); None when it has no schedule or its recurrence limit is reached."""
    return following(row.cron, row.time_zone, row.recurrence_limit,
                     row.fired if fired is None else fired, after_ms)


async def start_instance(engine: Engine, t: Tenant, d: Any, trigger: str) -> int:
    """Prepare an instance of definition row ``d`` (copies of its tasks with their
    deploys) and initiate it; its id. An :class:`APIError` when it cannot be made."""
    iid = await engine.prepare(t, d, trigger)
    await call(engine.store.set_state, iid, ("PREPARED",), "RUNNING", started_ms=now_ms())
    engine.poke()
    return iid


class Scheduler:
    """The background task that fires due slots of definitions (module docstring)."""

    def __init__(self, engine: Engine, store: ScheduleStore, catch_up_ms: int) -> None:
        self.engine = engine
        self.store = store
        self.catch_up_ms = catch_up_ms
        self._ticker = Ticker("workflow scheduler", TICK_SECONDS, self.tick, log)

    def start(self) -> None:
        self._ticker.start()

    async def stop(self) -> None:
        await self._ticker.stop()

    async def tick(self, now: int | None = None) -> list[int]:
        """Fire what is due at ``now`` (default: the clock); the ids of the instances
        this process started."""
        now = now_ms() if now is None else now
        started = []
        for row in await call(self.store.due, now):
            try:  # one definition's trouble must not hold up the others' slots
                iid = await self.fire(row, now)
            except Exception:
                log.exception("workflow %r version %r: firing its slot failed", row.name,
                              row.version)
                continue
            if iid is not None:
                started.append(iid)
        return started

    async def fire(self, row: Any, now: int) -> int | None:
        """Claim the due slot of definition ``row`` and start its instance; the
        instance's id, or None (another process took the slot, it was missed, or the
        instance could not be made)."""
        f = Firing.plan(row.next_fire_ms, row.fired, now, self.catch_up_ms,
                        lambda after, fired: next_after(row, after, fired))
        # Moved first, started second: the move is the claim (module docstring).
        if not await call(self.store.advance, row.id, f.slot, f.next, f.fired):
            return None
        name = f"{row.name!r} version {row.version!r}"
        if f.missed:
            log.warning("workflow %s: slot %s was missed by more than the catch-up time; "
                        "skipped", name, f.latest)
            return None
        t = await call(self.store.tenant, row.tenant_id)
        if t is None:
            return None
        try:
            iid = await start_instance(self.engine, t, row, "schedule")
        except APIError as exc:  # a task gone or not deployed: the slot passes
            log.warning("workflow %s: slot %s passed without an instance: %s", name,
                        f.latest, exc.message)
            return None
        log.info("workflow %s: slot %s started instance I%s", name, f.latest, iid)
        return iid

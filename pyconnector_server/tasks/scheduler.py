"""The schedule: delayed and recurrent tasks fire from the database.

Every :data:`TICK_SECONDS` the scheduler takes the tasks whose next slot has come
(``next_fire_ms``), starts a run for the slot and moves the task to its next slot. A
slot's run row is unique per task, so however many platform processes share the
database, one of them fires it (the one whose insert wins); the others see it taken.

Missed slots (the platform was down): a slot missed by less than ``task_catch_up_seconds``
fires once when the platform is back; several missed slots of a recurrent task fire once
together (the latest); older ones are skipped, and the task waits for its next slot. A
recurrence limit counts slots fired (0: for ever); a delayed task fires once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..clock import now_ms
from ..deps import call
from . import schedule
from .runner import Runner

log = logging.getLogger("pyconnector.tasks")

TICK_SECONDS = 0.2


def next_after(row: Any, after_ms: int, fired: int | None = None) -> int | None:
    """The task's slot after ``after_ms`` once ``fired`` slots have fired (default: the
    row's count); None when its schedule is done."""
    fired = row.fired if fired is None else fired
    if row.kind != "recurrent" or row.cron is None:
        return None
    if row.recurrence_limit and fired >= row.recurrence_limit:
        return None
    return schedule.next_slot(row.cron, after_ms, row.time_zone or "UTC")


class Scheduler:
    """The background task that fires due slots (see the module docstring)."""

    def __init__(self, runner: Runner, catch_up_ms: int) -> None:
        self.runner = runner
        self.store = runner.store
        self.catch_up_ms = catch_up_ms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="task-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a bug must not stop every schedule: say it, go on
                log.exception("task scheduler: a tick failed")
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self) -> int:
        """Fire what is due now; how many runs this process started."""
        now = now_ms()
        started = 0
        for row in await call(self.store.due, now):
            slot = row.next_fire_ms
            latest = slot
            # The latest slot not after now: missed ones fire once, together.
            while (after := next_after(row, latest)) is not None and after <= now:
                latest = after
            fired = row.fired + 1
            if now - latest > self.catch_up_ms:
                log.warning("task T%s: slot %s was missed by more than the catch-up time; "
                            "skipped", row.id, latest)
                fired = row.fired
                number = None
            else:
                number = await self.runner.start(row, "schedule", slot_ms=latest)
            nxt = next_after(row, max(latest, now), fired)
            if await call(self.store.advance, row.id, slot, nxt, fired):
                if nxt is None:
                    await call(self.store.update_task, row.id,
                               status="RUNNING" if number else "COMPLETED")
            if number is not None:
                started += 1
        return started

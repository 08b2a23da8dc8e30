"""The schedule: delayed and recurrent tasks fire from the database.

Every :data:`TICK_SECONDS` the scheduler takes the tasks whose next slot has come
(``next_fire_ms``), moves each to its next slot and starts a run for the slot. Moving the
schedule claims the slot: it is a compare-and-set on ``next_fire_ms``, so however many
platform processes share the database, one of them moves it and runs the slot; the others
see it moved. The run row of a slot is unique per task as well, a second guard. A slot
whose run cannot start (the task is not deployed, its deploy is not in this process's
data dir) passes: a failed run saying why, or a warning in the log; it is not retried,
and it does not hold up the other tasks' slots.

The task's status while its schedule runs: ``SCHEDULED`` between slots, ``RUNNING``
during a run, then what the run's ending says (``COMPLETED``, ``FAILED``, …) once the
schedule has no next slot; the runner sets these, not the scheduler.

Missed slots (the platform was down): a slot missed by less than ``task_catch_up_seconds``
fires once when the platform is back; several missed slots of a recurrent task fire once
together (the latest); older ones are skipped (one less than :data:`ON_TIME_MS` late never
is), and are not counted against the recurrence limit. A delayed task whose slot is
skipped shows it: status ``MISSED`` and ``nextRun`` None, with no run (it can still be
started by hand, or given a new time); a recurrent task whose slots are skipped stays
``SCHEDULED`` with ``nextRun`` its next slot, the skip said in the log only. A recurrence
limit counts slots fired (0: for ever); a delayed task fires once.
"""

from __future__ import annotations

import logging
from typing import Any

from ..clock import now_ms
from ..deps import call
from ..errors import APIError
from ..ticker import Ticker
from .runner import Runner
from .schedule import ON_TIME_MS, Firing, following

log = logging.getLogger("pyconnector.tasks")

__all__ = ["ON_TIME_MS", "TICK_SECONDS", "Scheduler", "next_after"]

TICK_SECONDS = 0.2


def next_after(row: Any, after_ms: int, fired: int | None = None) -> int | None:
    """The task's slot after ``after_ms`` once ``fired`` slots have fired (default: the
    row's count); None when its schedule is done (a delayed task has no next slot)."""
    if row.kind != "recurrent":
        return None
    return following(row.cron, row.time_zone, row.recurrence_limit,
                     row.fired if fired is None else fired, after_ms)


class Scheduler:
    """The background task that fires due slots (see the module docstring)."""

    def __init__(self, runner: Runner, catch_up_ms: int) -> None:
        self.runner = runner
        self.store = runner.store
        self.catch_up_ms = catch_up_ms
        self._ticker = Ticker("task scheduler", TICK_SECONDS, self._tick_and_obey, log)

    def start(self) -> None:
        self._ticker.start()

    async def stop(self) -> None:
        await self._ticker.stop()

    async def _tick_and_obey(self) -> None:
        await self.tick()
        await self.runner.obey()  # stops asked of this process's runs elsewhere

    async def tick(self) -> int:
        """Fire what is due now; how many runs this process started."""
        now = now_ms()
        started = 0
        for row in await call(self.store.due, now):
            try:  # one task's trouble must not hold up the others' slots
                started += await self.fire(row, now)
            except Exception:
                log.exception("task T%s: firing its slot failed", row.id)
        return started

    async def fire(self, row: Any, now: int) -> int:
        """Claim the due slot of ``row`` and run it; 1 if this process started a run."""
        f = Firing.plan(row.next_fire_ms, row.fired, now, self.catch_up_ms,
                        lambda after, fired: next_after(row, after, fired))
        # Moved first, run second: the move is the claim (see the module docstring).
        if not await call(self.store.advance, row.id, f.slot, f.next, f.fired):
            return 0  # another process took the slot
        if f.missed:
            log.warning("task T%s: slot %s was missed by more than the catch-up time; "
                        "skipped", row.id, f.latest)
            if f.next is None:
                await call(self.store.update_task, row.id, status="MISSED")
            return 0
        try:
            number = await self.runner.start(row, "schedule", slot_ms=f.latest)
        except APIError as exc:  # not deployed: nothing to run, the slot passes
            log.warning("task T%s: slot %s passed without a run: %s", row.id, f.latest,
                        exc.message)
            return 0
        return int(number is not None)

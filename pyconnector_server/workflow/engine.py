"""The workflow engine: moves instances along their graphs.

For each instance with work to do (running, paused, or with a step still running), the
engine

1. ends the steps whose run has ended (``SUCCEEDED`` when the run succeeded; else
   ``FAILED``, or ``ABORTED`` in an aborted instance), and stops the runs in this
   process of an aborted instance (its abort may have gone through another process);
2. in a running instance, starts every pending step whose upstream steps have all
   succeeded, on the Task Service's runner (so on its executor: local or Celery); a
   step is claimed first by a compare-and-set in the database, so with several platform
   processes each step runs once;
3. ends the instance: ``SUCCEEDED`` when every step has; ``FAILED`` when nothing runs
   and what is pending waits on a failed step (steps on branches the failure does not
   reach have run by then).

It acts at once when a run of this process ends (the runner tells it), and every
:data:`TICK_SECONDS` otherwise (runs of other processes, a restart). Everything it knows
is in the database: a platform restarted mid-instance goes on where it was; a step whose
run was lost with the old process fails, and the instance is then recoverable - a step
that succeeded never runs again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

from ..auth import Tenant
from ..clock import now_ms
from ..deps import call
from ..errors import APIError
from ..tasks.runner import Runner
from ..tasks.store import ENDED
from ..ticker import Ticker
from . import dag
from .store import WorkflowStore

log = logging.getLogger("pyconnector.workflow")

TICK_SECONDS = 0.5
#: a step claimed this long ago that still has no run lost its process before starting it
UNSTARTED_MS = 60_000


class Engine:
    """The background task that moves instances (see the module docstring)."""

    def __init__(self, store: WorkflowStore, runner: Runner) -> None:
        self.store = store
        self.runner = runner
        self._ticker = Ticker("workflow engine", TICK_SECONDS, self.tick, log)

    def start(self) -> None:
        self.runner.listeners.append(self.poke)
        self._ticker.start()

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.runner.listeners.remove(self.poke)
        await self._ticker.stop()

    async def prepare(self, t: Tenant, d: Any, trigger: str = "manual") -> int:
        """A PREPARED instance of definition row ``d``: copies of its tasks, with their
        deploys (see :meth:`WorkflowStore.prepare`); its id."""
        iid, copies = await call(self.store.prepare, t, d, trigger)
        for base, copy in copies:
            row = await call(self.runner.store.row_by_id, copy)
            await call(self.runner.files.copy_bundle, t.id, base, copy, row.deployed_ms)
        return iid

    def poke(self) -> None:
        """Look again now (a run ended, an instance was started or resumed)."""
        self._ticker.poke()

    async def tick(self) -> None:
        for iid in await call(self.store.moving):
            try:
                await self.advance(iid)
            except Exception:
                log.exception("workflow instance I%s: moving it failed", iid)

    async def advance(self, iid: int) -> None:
        inst, d, rows = await call(self.store.steps, iid)
        if inst is None:
            return
        states = {s.base_task_id: s.state for s in rows}
        now = now_ms()
        for s in rows:  # 1. steps whose run has ended
            if s.state != "RUNNING":
                continue
            if s.run_number is not None and s.run_state in ENDED:
                new = "SUCCEEDED" if s.run_state == "succeeded" else (
                    "ABORTED" if inst.state == "ABORTED" else "FAILED")
                reason = "" if new == "SUCCEEDED" else f"run {s.run_number}: {s.run_state}" \
                    f" ({s.run_reason})"
                await call(self.store.set_step, s.id, state=new, reason=reason)
                states[s.base_task_id] = new
            elif s.run_number is not None and s.run_state is None:  # its task was deleted
                await call(self.store.set_step, s.id, state="FAILED",
                           reason=f"its task T{s.task_id} was deleted while it ran")
                states[s.base_task_id] = "FAILED"
            elif s.run_number is None and s.claimed_ms is not None \
                    and now - s.claimed_ms > UNSTARTED_MS:
                await call(self.store.set_step, s.id, state="FAILED",
                           reason="its platform process stopped before starting it")
                states[s.base_task_id] = "FAILED"
            elif inst.state == "ABORTED" and self.runner.runs_of(s.task_id):
                # A run of an aborted instance in this process: the abort went through
                # another process (a runner stops its own runs only).
                await self.runner.stop(s.task_id)
        if inst.state != "RUNNING":
            return
        upstreams = dag.upstreams(d.tasks, [tuple(e) for e in d.edges])
        for s in rows:  # 2. steps whose upstream steps have all succeeded
            if states[s.base_task_id] == "PENDING" and all(
                    states[u] == "SUCCEEDED" for u in upstreams[s.base_task_id]):
                if await call(self.store.claim, s.id):
                    states[s.base_task_id] = await self._start(s)
                else:
                    states[s.base_task_id] = "RUNNING"  # another process took it
        values = set(states.values())  # 3. the instance's end
        if values == {"SUCCEEDED"}:
            await call(self.store.set_state, iid, ("RUNNING",), "SUCCEEDED", ended_ms=now_ms())
        elif "RUNNING" not in values and values & {"FAILED", "ABORTED"}:
            await call(self.store.set_state, iid, ("RUNNING",), "FAILED", ended_ms=now_ms())

    async def _start(self, s: Any) -> str:
        """Run the step's task; the step's state now."""
        row = await call(self.runner.store.row_by_id, s.task_id)
        try:
            if row is None:
                raise APIError(409, f"its task T{s.task_id} was deleted")
            # The step learns its run in the run's own transaction: no crash can leave a
            # run the step does not know (it would be failed as never started, then
            # recovered into a second run).
            await self.runner.start(row, "workflow",
                                    with_run=functools.partial(self.store.link_run, s.id))
        except APIError as exc:
            await call(self.store.set_step, s.id, state="FAILED", reason=exc.message)
            return "FAILED"
        return "RUNNING"

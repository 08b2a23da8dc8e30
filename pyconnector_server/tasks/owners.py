"""Owners: which platform processes running tasks are alive, so that the runs of one
that died are marked ``lost``.

A run belongs to the process that started it (its ``owner``, a uuid per process). Each
process keeps a row in ``task_owner`` and renews it every :func:`beat_seconds` (its
heartbeat); the row says until when the process counts as alive: the heartbeat's time
plus the process's ``task_owner_timeout_seconds``. Every process sweeps, at start and
after each heartbeat: an owner whose row lapsed is gone, and so is an owner with no row.
A gone owner's row is removed and its unfinished runs (queued, running, paused) become
``lost``; their tasks become ``FAILED`` (``SCHEDULED`` while a slot is pending), as a
run ending ``lost`` leaves them. A process that stops cleanly removes its row itself,
and marks lost at once what its stop cut short.

On PostgreSQL, where several processes share the tables, the runs of a process killed
outright (SIGKILL, a host lost) are so marked by the others within its timeout and one
heartbeat of theirs. Heartbeats are timed by the database's clock there: the hosts'
clocks need not agree. On SQLite one process owns the database: the same rows and
heartbeats, but at start every other owner is gone whatever its row says (what the last
process left is marked at once, as a restart should).

A process cut off from the database for longer than its timeout is taken for gone: its
runs are marked lost while they may still run. Its next heartbeat makes its row again
(with a warning in its log), and a run that then ends there records its real ending
over ``lost``.
"""

from __future__ import annotations

import logging
import os
import socket

from ..deps import call
from ..ticker import Ticker
from .store import TaskStore

log = logging.getLogger("pyconnector.tasks")

#: the longest time between two heartbeats of a process
BEAT_SECONDS = 5.0


def beat_seconds(timeout_seconds: float) -> float:
    """How often a process whose owner timeout is ``timeout_seconds`` beats: four times
    per timeout (one late heartbeat is no death), at most every :data:`BEAT_SECONDS`."""
    return max(0.25, min(BEAT_SECONDS, timeout_seconds / 4))


class Heartbeat:
    """This process's owner row, renewed in the background, and the sweep of gone owners
    (see the module docstring). ``alone``: the database is this process's only (SQLite),
    so at :meth:`open` every other owner is gone."""

    def __init__(self, store: TaskStore, owner: str, timeout_seconds: float,
                 alone: bool) -> None:
        self.store = store
        self.owner = owner
        self.timeout_ms = int(timeout_seconds * 1000)
        self.interval = beat_seconds(timeout_seconds)
        self.alone = alone
        # The first beat is open's: the loop waits an interval before its own.
        self._ticker = Ticker("task owner heartbeat", self.interval, self.tick, log,
                              wait_first=True)

    async def open(self) -> None:
        """Make this process's row, sweep once, and beat from now on."""
        await call(self.store.beat, self.owner, self.timeout_ms, socket.gethostname(),
                   os.getpid())
        lost = await call(self.store.sweep, self.owner, self.alone)
        if lost:
            log.warning("tasks: %d run(s) of stopped platform processes marked lost", lost)
        self._ticker.start()

    async def close(self) -> None:
        """Stop beating and remove this process's row (call it once its runs are over:
        those still unfinished are marked lost)."""
        await self._ticker.stop()
        try:
            await call(self.store.retire, self.owner)
        except Exception:  # the others' sweep will do it, a timeout later
            log.exception("tasks: removing this process's owner row failed")

    async def tick(self) -> int:
        """One heartbeat, then one sweep; how many runs the sweep marked lost."""
        if not await call(self.store.beat, self.owner, self.timeout_ms,
                          socket.gethostname(), os.getpid()):
            log.warning("tasks: this platform process (owner %s) was taken for stopped: "
                        "no heartbeat of it reached the database within its timeout; "
                        "its runs were marked lost", self.owner)
        # By the heartbeats even on SQLite: a second process started there by mistake
        # keeps its runs while it beats (only a start takes every other owner for gone).
        lost = await call(self.store.sweep, self.owner)
        if lost:
            log.warning("tasks: %d run(s) of stopped platform processes marked lost", lost)
        return lost

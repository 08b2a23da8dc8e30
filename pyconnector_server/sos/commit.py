"""Group commit: concurrent writes share one transaction and one commit.

Each observation insert is a small transaction, and on SQLite (one writer at a time) its
``BEGIN IMMEDIATE … COMMIT`` costs about as much as its rows. :class:`GroupCommit` lets
the requests that arrive while a write is under way wait for it to end, then writes all
of them in the next transaction, run by one of them (the leader) on behalf of the others.

Each request is answered only after the commit that holds its rows, so an acknowledged
write is as durable as before. A request's work is a function of the connection that may
run twice: if the shared transaction fails (one request's work raised, the database
refused the commit), it is rolled back and every request of the group runs its work
again, alone, in a transaction of its own, so one bad request fails only itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from .. import cancel
from ..db import Database

T = TypeVar("T")

# A group's transaction stays short: at most this many requests share it.
MAX_GROUP = 32


class _Job(Generic[T]):
    __slots__ = ("work", "cancellation", "result", "error", "state")

    def __init__(self, work: Callable[[sa.Connection], T]) -> None:
        self.work = work
        self.cancellation = cancel.current.get()  # the request's, for the leader to honour
        self.result: T | None = None
        self.error: BaseException | None = None
        self.state = "waiting"  # then "done", or "alone": run again in its own transaction


class GroupCommit:
    """Runs write work for concurrent callers in shared transactions (see the module)."""

    def __init__(self, db: Database, max_group: int = MAX_GROUP) -> None:
        self.db = db
        self.max_group = max_group
        self._cond = threading.Condition()
        self._queue: list[_Job[Any]] = []
        self._writing = False
        #: transactions written and jobs done in them (for tests and benchmarks)
        self.groups = 0
        self.jobs = 0

    def run(self, work: Callable[[sa.Connection], T]) -> T:
        """``work(conn)`` inside a write transaction, maybe shared with other callers';
        its result once that transaction is committed (its exception if it raised)."""
        job: _Job[T] = _Job(work)
        with self._cond:
            self._queue.append(job)
        while True:
            with self._cond:
                while job.state == "waiting" and self._writing:
                    self._cond.wait()
                if job.state != "waiting":
                    break
                # Nobody is writing: this caller leads the next group, the oldest first
                # (its own job is in it, or it leads again after).
                self._writing = True
                batch = self._queue[:self.max_group]
                del self._queue[:len(batch)]
            try:
                self._write(batch)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if job.state == "alone":
            with self.db.write() as conn:
                return work(conn)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _write(self, batch: list[_Job[Any]]) -> None:
        """One transaction for ``batch`` (run by its leader), or each alone if it fails."""
        live = []
        for job in batch:
            if job.cancellation is not None and job.cancellation.cancelled:
                job.error, job.state = cancel.Cancelled(), "done"  # its client is gone
            else:
                live.append(job)
        if not live:
            return
        # The shared transaction belongs to no one request: a client that goes away
        # must not interrupt the others' writes (its own was skipped above if gone).
        token = cancel.current.set(None)
        try:
            results = []
            with self.db.write() as conn:
                for job in live:
                    results.append(job.work(conn))
        except BaseException as exc:  # noqa: BLE001 - each job learns its own outcome
            if len(live) == 1:
                live[0].error, live[0].state = exc, "done"
            else:
                for job in live:
                    job.state = "alone"
            return
        finally:
            cancel.current.reset(token)
        for job, result in zip(live, results):
            job.result, job.state = result, "done"
        self.groups += 1
        self.jobs += len(live)

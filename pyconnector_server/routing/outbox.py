"""Observations inserted with ``x-routing: mq`` or ``both`` enter Message Routing.

The SOS writes them to its outbox in the transaction of the insert, so an acknowledged
insert is never lost to routing. This task drains the outbox into each tenant's direct
exchange with the tenant's routing key, oldest row first (in order per sensor, since a
sensor's observations are rows in insert order), one message per insert body as it was
sent, and deletes the rows once the broker has confirmed them: at least once (a crash
between the confirm and the delete sends those rows again).

Several platform processes may share one PostgreSQL database. With a shared broker
(RabbitMQ) one drains at a time, the one holding a session advisory lock on this schema
(taken over by another when its holder dies), so order holds across them. With the
embedded router each process has a router of its own: rows carry the inserting process
(``origin``) and each process drains its own, without the lock; rows of a process that
died are dropped after :data:`ORPHAN_MS` (its router's messages died with it). A broker
that is down leaves the rows in place and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from typing import Any

import sqlalchemy as sa

from ..backends.errors import BackendError
from ..db import Database
from ..deps import call
from ..errors import APIError
from ..sos.store import SosStore
from .live import Live

log = logging.getLogger("pyconnector.routing")

BATCH = 500  # outbox rows taken at a time
IDLE_SECONDS = 0.1  # between looks at an empty outbox
RETRY_SECONDS = 1.0  # after a broker failure
LOCK_CLASS = 0x70636F6E  # with the schema's hash, the advisory lock of the drainer ("pcon")
ORPHAN_MS = 3_600_000  # an embedded router's rows left by a dead process are dropped after


class OutboxDrain:
    """The background task that moves outbox rows to the broker (see the module)."""

    def __init__(self, live: Live, sos: SosStore, db: Database) -> None:
        self.live = live
        self.sos = sos
        self.db = db
        self._lock_conn: Any = None
        self._guard = threading.RLock()  # the lock connection, between threads
        self._stopped = False
        if not live.broker.shared:
            sos.outbox_origin = uuid.uuid4().hex
        self._last_sweep = 0.0

    def _hold_lock(self) -> bool:
        """Whether this process drains: always on SQLite (one process writes) and with a
        broker of its own (it drains its own rows); else while it holds the advisory lock
        of this schema's drainer on a connection of its own. The lock is per schema, as
        the outbox is: platforms in other schemas of the database drain on their own."""
        if self.db.dialect != "postgresql" or not self.live.broker.shared:
            return True
        # Under the guard: a stop while this runs in a worker thread waits for it, so the
        # connection it opens is never left open behind the stop.
        with self._guard:
            if self._stopped:
                return False
            if self._lock_conn is None:
                self._lock_conn = self.db.engine.connect()
            try:
                got = self._lock_conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:cls, hashtext(current_schema()))"),
                    {"cls": LOCK_CLASS}).scalar()
                self._lock_conn.commit()
            except Exception:
                self._release()
                raise
            return bool(got)

    def _release(self) -> None:
        with self._guard:
            if self._lock_conn is not None:
                with contextlib.suppress(Exception):
                    self._lock_conn.close()  # a session lock ends with its session
                self._lock_conn = None

    async def drain_once(self) -> int:
        """Move one batch; the number of rows moved."""
        if time.monotonic() - self._last_sweep > ORPHAN_MS / 1000 / 10:
            self._last_sweep = time.monotonic()
            if dropped := await call(self.sos.outbox_forget_orphans, ORPHAN_MS):
                log.warning("routing outbox: dropped %d row(s) a stopped process left for its "
                            "embedded router", dropped)
        rows = await call(self.sos.outbox_batch, BATCH)
        done: list[int] = []
        try:
            for row_id, t, payload in rows:
                exchange = await self.live.direct(t)
                await self.live.publish(exchange, await self.live.routing_key(t), payload)
                done.append(row_id)
        finally:
            if done:  # what the broker confirmed, even when a later row failed
                await call(self.sos.outbox_done, done)
        return len(done)

    async def run(self) -> None:
        holding = False
        try:
            while True:
                try:
                    if not holding:
                        holding = await call(self._hold_lock)
                        if not holding:
                            await asyncio.sleep(RETRY_SECONDS)  # another process drains
                            continue
                    if not await self.drain_once():
                        await asyncio.sleep(IDLE_SECONDS)
                except (BackendError, APIError) as exc:
                    log.warning("routing outbox: %s; trying again", exc)
                    await asyncio.sleep(RETRY_SECONDS)
                except Exception:
                    log.exception("routing outbox: drain failed; trying again")
                    holding = False
                    await call(self._release)
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            # Here, not in the thread pool: a cancelled task does not wait for a thread,
            # and a lock left on an open connection would keep every other process (and
            # every later app on the database) from draining.
            self._stopped = True
            self._release()

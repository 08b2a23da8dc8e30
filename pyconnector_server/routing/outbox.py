"""Observations inserted with ``x-routing: mq`` or ``both`` enter Message Routing.

The SOS writes them to its outbox in the transaction of the insert, so an acknowledged
insert is never lost to routing. This task drains the outbox into each tenant's direct
exchange with the tenant's routing key, oldest row first (in order per sensor, since a
sensor's observations are rows in insert order), one message per insert body as it was
sent, and deletes the rows once the broker has confirmed them: at least once (a crash
between the confirm and the delete sends those rows again).

Several platform processes may share one PostgreSQL database: one drains at a time, the
one holding a session advisory lock (taken over by another when its holder dies), so
order holds across them. A broker that is down leaves the rows in place and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
LOCK_ID = 0x70636F6E  # the advisory lock naming "the outbox drainer" ("pcon")


class OutboxDrain:
    """The background task that moves outbox rows to the broker (see the module)."""

    def __init__(self, live: Live, sos: SosStore, db: Database) -> None:
        self.live = live
        self.sos = sos
        self.db = db
        self._lock_conn: Any = None

    def _hold_lock(self) -> bool:
        """Whether this process drains: always on SQLite (one process writes); on
        PostgreSQL, while it holds the advisory lock on a connection of its own."""
        if self.db.dialect != "postgresql":
            return True
        if self._lock_conn is None:
            self._lock_conn = self.db.engine.connect()
        try:
            got = self._lock_conn.execute(sa.text("SELECT pg_try_advisory_lock(:id)"),
                                          {"id": LOCK_ID}).scalar()
            self._lock_conn.commit()
        except Exception:
            self._release()
            raise
        return bool(got)

    def _release(self) -> None:
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):
                self._lock_conn.close()  # a session lock ends with its session
            self._lock_conn = None

    async def drain_once(self) -> int:
        """Move one batch; the number of rows moved."""
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
            self._release()

"""A background loop that calls a tick every few seconds, or at once when poked.

The schedulers of tasks and workflows, the workflow engine and the task owners'
heartbeat are all "do this now and then, and never die of one failure": a
:class:`Ticker` is that loop, once. A tick that raises is logged and the loop goes on, so
one bug does not stop every schedule.

It waits on an event with a timer rather than ``asyncio.wait_for``: cancelling a wait on
every tick upset the anyio cancel scopes of streams closing in other tasks (an in-process
WebSocket's RabbitMQ consumer was left open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any


class Ticker:
    """Calls ``tick()`` every ``every`` seconds (or sooner, after :meth:`poke`) from
    :meth:`start` until :meth:`stop`. ``wait_first``: wait before the first tick."""

    def __init__(self, name: str, every: float, tick: Callable[[], Awaitable[Any]],
                 log: logging.Logger, wait_first: bool = False) -> None:
        self.name = name
        self.every = every
        self._tick = tick
        self._log = log
        self._wait_first = wait_first
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait until it is over (a tick in progress included)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Tick now rather than at the next timer (something worth a look happened)."""
        self._wake.set()

    async def _run(self) -> None:
        if self._wait_first:
            await self._wait()
        while True:
            self._wake.clear()
            try:
                await self._tick()
            except Exception:  # a bug must not stop the loop: say it, go on
                self._log.exception("%s: a tick failed", self.name)
            await self._wait()

    async def _wait(self) -> None:
        timer = asyncio.get_running_loop().call_later(self.every, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

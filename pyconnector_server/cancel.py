"""Stop database work nobody waits for any more.

Every HTTP request runs under a :class:`Cancellation` (set by :class:`CancelOnDisconnect`
in a context variable, which Starlette copies into the worker threads that run store
calls). :class:`~pyconnector_server.db.Database` registers each connection it hands out
with the current cancellation; when the client disconnects, the middleware cancels them
all: PostgreSQL gets a cancel request, SQLite an interrupt. The statement then fails, the
transaction rolls back, and the worker thread and the database are free again, instead
of computing an answer for a socket that is gone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import APIError


class Cancelled(APIError):
    """Raised when work starts for a request whose client has already gone."""

    def __init__(self) -> None:
        super().__init__(499, "the client closed the connection; the request was cancelled")


class Cancellation:
    """The cancel switches of one request's running database work."""

    def __init__(self) -> None:
        self.cancelled = False
        self._lock = threading.Lock()
        self._switches: dict[int, Callable[[], Any]] = {}
        self._next = 0

    @contextmanager
    def watch(self, switch: Callable[[], Any]) -> Iterator[None]:
        """While the block runs, :meth:`cancel` calls ``switch`` (e.g. ``conn.cancel``)."""
        with self._lock:
            if self.cancelled:
                raise Cancelled()
            token = self._next
            self._next += 1
            self._switches[token] = switch
        try:
            yield
        finally:
            with self._lock:
                self._switches.pop(token, None)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            switches = list(self._switches.values())
        for switch in switches:
            try:
                switch()
            except Exception:  # noqa: BLE001 - a connection that already ended is fine
                pass


current: ContextVar[Cancellation | None] = ContextVar("pyconnector_cancellation", default=None)


def watching(switch: Callable[[], Any]) -> Any:
    """``with watching(conn.cancel):`` - cancellable by the current request, if any."""
    c = current.get()
    return c.watch(switch) if c is not None else _nothing()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class CancelOnDisconnect:
    """ASGI middleware: a :class:`Cancellation` per HTTP request, fired on disconnect.

    The app reads the request through a one-message queue fed by a pump task, so the
    pump keeps listening after the body is complete - when the app is busy in the
    database and reads nothing - and sees the disconnect as soon as the server reports
    it. The queue holds one message, so uploads keep their back-pressure.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cancellation = Cancellation()
        token = current.set(cancellation)
        queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
        gone: Message | None = None

        async def pump() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    cancellation.cancel()
                    await queue.put(message)
                    return
                await queue.put(message)

        async def receive_queued() -> Message:
            nonlocal gone
            if gone is not None:
                return gone
            message = await queue.get()
            if message["type"] == "http.disconnect":
                gone = message
            return message

        task = asyncio.ensure_future(pump())
        try:
            await self.app(scope, receive_queued, send)
        finally:
            task.cancel()
            current.reset(token)


@contextmanager
def finish_anyway() -> Iterator[None]:
    """Store calls in the block run to their end even when the client goes meanwhile: an
    operation of several steps (a copy, a delete, a workflow's prepare or abort) stopped
    half-way would leave a copy half made, a task deleted but for its row, a run queued
    that nothing will start. Such steps are short; nobody gets the answer."""
    token = current.set(None)
    try:
        yield
    finally:
        current.reset(token)

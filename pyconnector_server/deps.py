"""Route plumbing every service shares: authentication, its state, blocking calls, clock.

A service's routes read::

    store = deps.state("sos", SosStore)     # its resource on ``app.state``
    Auth, Store = deps.Auth, Depends(store)

    @router.get("/things")
    async def things(t: Tenant = Auth, s: SosStore = Store) -> Any:
        return await deps.call(s.list_things, t)

Dependencies take :class:`~starlette.requests.HTTPConnection`, so they serve WebSocket and
SSE routes as well as plain HTTP ones. A WebSocket has no status to answer, so
:func:`install` makes the app report an :class:`~pyconnector_server.errors.APIError`
raised while serving one (a refused key first of all) by closing it: code 1008 (policy
violation; 1011 for a server fault) with the error's message as the close reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from fastapi import Depends, FastAPI
from starlette import status
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketState

from .auth import ApiKey, Tenant, current_key, current_tenant
from .clock import now_ms
from .errors import APIError

__all__ = ["Auth", "AuthKey", "ApiKey", "Depends", "Tenant", "call", "current_key",
           "current_tenant", "install", "now_ms", "state"]

T = TypeVar("T")
CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's payload is 125 bytes, 2 of them the code

Auth = Depends(current_tenant)  # the caller's tenant, or 401 (1008 on a WebSocket)
AuthKey = Depends(current_key)  # the caller's API key (with its role), or 401


def state(name: str, kind: type[T]) -> Callable[[HTTPConnection], Awaitable[T]]:
    """A dependency answering ``app.state.<name>``: the resource a service's ``open``
    hung there (``kind`` types it for the routes; it is not checked per request).

    ``async`` because it does no I/O: FastAPI runs a plain ``def`` dependency in a worker
    thread, a hop per request for nothing."""

    async def dependency(conn: HTTPConnection) -> T:
        return getattr(conn.app.state, name)  # type: ignore[no-any-return]

    dependency.__name__ = f"{name}_state"
    dependency.__doc__ = f"The {kind.__name__} on ``app.state.{name}``."
    return dependency


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the blocking ``fn`` (a store's database or blob work) in the thread pool, so
    the event loop keeps serving other requests meanwhile.

    A task cancelled meanwhile (a background loop being stopped) waits for the thread to
    finish before the cancellation goes on: a thread cannot be stopped, and one left
    running would use the database after its owner closed it (a connection returned to
    a disposed pool stays open until the garbage collector finds it)."""
    work = asyncio.ensure_future(run_in_threadpool(fn, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with anyio.CancelScope(shield=True):  # anyio would cancel this wait too
            await asyncio.wait({work})
        if not work.cancelled():
            work.exception()  # seen: its failure matters to nobody now
        raise


def close_reason(message: str) -> str:
    """``message`` cut to fit a WebSocket close frame (UTF-8, with "..." when cut)."""
    raw = message.encode()
    if len(raw) <= CLOSE_REASON_BYTES:
        return message
    return raw[:CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."


async def close_websocket(websocket: WebSocket, exc: APIError) -> None:
    """Report ``exc`` on ``websocket``: close it with 1008 (1011 for a 5xx) and the
    message as reason. A socket still in its handshake is accepted first: a refused
    handshake reaches a browser's WebSocket as a bare 1006, without code or reason."""
    code = status.WS_1011_INTERNAL_ERROR if exc.status >= 500 else (
        status.WS_1008_POLICY_VIOLATION)
    if websocket.client_state == WebSocketState.CONNECTING:
        await websocket.accept()
    if websocket.client_state == WebSocketState.CONNECTED:
        await websocket.close(code, close_reason(exc.message))


def install(app: FastAPI) -> None:
    """Report :class:`APIError` on WebSockets by closing them (see :func:`close_websocket`);
    HTTP requests keep the handler :func:`pyconnector_server.errors.install` set, which
    must run first."""
    answer_http = app.exception_handlers[APIError]

    async def api_error(conn: HTTPConnection, exc: Exception) -> Response | None:
        assert isinstance(exc, APIError)
        if isinstance(conn, WebSocket):
            await close_websocket(conn, exc)
            return None
        return await answer_http(conn, exc)  # type: ignore[no-any-return]

    app.add_exception_handler(APIError, api_error)

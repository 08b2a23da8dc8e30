"""Authentication on WebSocket and SSE connections, through the same dependencies.

A WebSocket has no status to answer: a refused one is accepted and at once closed with
code 1008 (policy violation) and the error's message as the reason, which every client
(a browser's WebSocket too) can read. An SSE stream is a plain response: 401.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi import APIRouter, WebSocket
from starlette.datastructures import State
from starlette.responses import StreamingResponse
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from pyconnector_server import deps
from pyconnector_server.app import create_app
from pyconnector_server.auth import ApiKey, Tenant, create_api_key, create_jwt_key
from pyconnector_server.errors import APIError
from pyconnector_server.services import Service, registered
from pyconnector_server.settings import Settings

WS_1008 = 1008


def refuse_odd(n: int = 0) -> int:
    """A dependency failing after authentication, as a service's own check would."""
    if n % 2:
        raise APIError(400, f"n: {n} is odd")
    return n


def _test_service() -> Service:
    router = APIRouter(prefix="/api/test")

    @router.websocket("/ws")
    async def echo(websocket: WebSocket, t: Tenant = deps.Auth,
                   n: int = deps.Depends(refuse_odd)) -> None:
        await websocket.accept()
        await websocket.send_text(t.name)
        await websocket.send_text(f"n={n}")
        await websocket.close()

    @router.websocket("/ws-key")
    async def whoami(websocket: WebSocket, k: ApiKey = deps.AuthKey) -> None:
        await websocket.accept()
        await websocket.send_json({"tenant": k.tenant.name, "role": k.role})
        await websocket.close()

    @router.get("/events")
    async def events(t: Tenant = deps.Auth) -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            for i in range(2):
                yield f"event: hello\ndata: {t.name} {i}\n\n".encode()

        return StreamingResponse(stream(), media_type="text/event-stream")

    @asynccontextmanager
    async def nothing(state: State) -> AsyncIterator[None]:
        yield

    return Service(name="test", routers=[router], tables="pyconnector_server.db", open=nothing)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.load({"data_dir": str(tmp_path / "data")}, environ={})
    app = create_app(settings, [*registered(), _test_service()])
    with TestClient(app) as c:
        yield c


def _key(client: TestClient, tenant: str) -> str:
    return create_api_key(client.app.state.db, tenant)  # type: ignore[attr-defined]


def _refused(client: TestClient, path: str, headers: dict[str, str]) -> WebSocketDisconnect:
    """Open ``path``: accepted, then closed before any message; the close."""
    with client.websocket_connect(path, headers=headers) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    return closed.value


def test_an_authenticated_websocket_is_accepted(client: TestClient) -> None:
    key = _key(client, "acme")
    with client.websocket_connect("/api/test/ws", headers={"x-api-key": key}) as ws:
        assert ws.receive_text() == "acme"
        assert ws.receive_text() == "n=0"
    with client.websocket_connect("/api/test/ws-key", headers={"x-api-key": key}) as ws:
        assert ws.receive_json() == {"tenant": "acme", "role": "admin"}


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing API key: send it in the 'x-api-key' header"),
    ({"x-api-key": "not-a-key"}, "unknown API key"),
])
def test_an_unauthenticated_websocket_is_closed_with_1008(
        client: TestClient, headers: dict[str, str], reason: str) -> None:
    for path in ("/api/test/ws", "/api/test/ws-key"):
        closed = _refused(client, path, headers)
        assert (closed.code, closed.reason) == (WS_1008, reason)
    # The server lives on: the next, authenticated socket is served.
    with client.websocket_connect("/api/test/ws",
                                  headers={"x-api-key": _key(client, "next")}) as ws:
        assert ws.receive_text() == "next"


def test_jwt_mode_applies_to_websockets(client: TestClient) -> None:
    key = _key(client, "jwt-tenant")
    secret = create_jwt_key(client.app.state.db, "jwt-tenant")  # type: ignore[attr-defined]
    closed = _refused(client, "/api/test/ws", {"x-api-key": key})
    assert closed.code == WS_1008
    assert closed.reason == "this tenant is in JWT mode: send 'Authorization: Bearer <token>'"
    now = int(time.time())
    # A long message (this one is 150+ bytes) is cut to fit a close frame's 123 bytes.
    far = jwt.encode({"iat": now, "exp": now + 10 * 86400}, secret, algorithm="HS256")
    closed = _refused(client, "/api/test/ws", {"x-api-key": key,
                                               "authorization": f"Bearer {far}"})
    assert closed.code == WS_1008
    assert closed.reason.startswith("invalid JWT: expires too far ahead")
    assert closed.reason.endswith("...") and len(closed.reason.encode()) == 123
    token = jwt.encode({"iat": now, "exp": now + 60}, secret, algorithm="HS256")
    with client.websocket_connect("/api/test/ws", headers={
            "x-api-key": key, "authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_text() == "jwt-tenant"


def test_an_api_error_in_another_websocket_dependency_closes_it(client: TestClient) -> None:
    key = _key(client, "acme")
    closed = _refused(client, "/api/test/ws?n=3", {"x-api-key": key})
    assert (closed.code, closed.reason) == (WS_1008, "n: 3 is odd")


def test_an_sse_stream_needs_a_key(client: TestClient) -> None:
    r = client.get("/api/test/events")
    assert r.status_code == 401
    assert r.json() == {"code": 401,
                        "message": "missing API key: send it in the 'x-api-key' header"}
    assert client.get("/api/test/events", headers={"x-api-key": "nope"}).status_code == 401
    key = _key(client, "acme")
    with client.stream("GET", "/api/test/events", headers={"x-api-key": key}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body: Any = "".join(r.iter_text())
    assert body == "event: hello\ndata: acme 0\n\nevent: hello\ndata: acme 1\n\n"


def test_close_reason_fits_a_close_frame() -> None:
    assert deps.close_reason("short") == "short"
    cut = deps.close_reason("é" * 100)  # 200 bytes; a cut must not split a character
    assert cut.endswith("...") and len(cut.encode()) <= 123
    assert cut[:-3] == "é" * 60

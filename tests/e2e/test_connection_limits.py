"""Connection limits of a real `pyconnector serve` process, driven with raw sockets.

Huge request heads get 431, slow heads and stalled bodies 408, idle connections are
closed, connections past `max_connections` get 503; normal requests keep working.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest
from conftest import Server, start_server

pytestmark = pytest.mark.e2e

TIMEOUT = 1  # head, body and keep-alive timeouts of the `limited` server, in seconds
SENSORS = "/api/sos/v2.0/sensors"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A platform whose timeouts are short enough to wait for."""
    s = start_server(tmp_path_factory.mktemp("limits"), "",
                     "--header-timeout-seconds", str(TIMEOUT),
                     "--body-timeout-seconds", str(TIMEOUT),
                     "--keep-alive-seconds", str(TIMEOUT))
    yield s
    s.stop()


OPENED: list[socket.socket] = []  # by connect(), closed after each test


@pytest.fixture(autouse=True)
def close_sockets() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def connect(server: Server) -> socket.socket:
    url = urlparse(server.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    OPENED.append(sock)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(server: Server, path: str = SENSORS, method: str = "GET", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {urlparse(server.url).netloc}",
             f"x-api-key: {server.api_key}",
             *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (with Content-Length) from ``sock``: status, headers, body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    raw_head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (EOF); fails if it stays open ``limit`` s."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pytest.fail(f"connection still open after {limit} s")
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def send_until_answered(sock: socket.socket, data: bytes) -> None:
    """Send ``data`` as a careful client does: stop once the server has answered."""
    view = memoryview(data)
    sock.setblocking(False)
    try:
        while view:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break
            if writable:
                view = view[sock.send(view[:1 << 20]):]
    finally:
        sock.setblocking(True)
        sock.settimeout(10)


def assert_serves(server: Server) -> None:
    """An ordinary authenticated request still gets its answer."""
    r = httpx.get(server.url + SENSORS, headers={"x-api-key": server.api_key}, timeout=10)
    assert r.status_code == 200, r.text


# -- head size ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1 << 20, 16 << 20])
def test_huge_header_gets_431_and_close_without_auth(server: Server, size: int) -> None:
    sock = connect(server)  # the default settings: max_header_bytes 64 KiB
    send_until_answered(sock, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
                        + b"a" * size + b"\r\n\r\n")
    status, headers, body = read_response(sock)
    assert status == 431
    assert headers["connection"] == "close"
    assert "max_header_bytes" in body.decode() and "65536" in body.decode()
    closed_after(sock, 5)
    assert_serves(server)


@pytest.mark.parametrize("where", ["url", "many headers", "one chunk"])
def test_every_shape_of_big_head_is_refused(server: Server, where: str) -> None:
    big = 70_000  # just over 64 KiB
    if where == "url":
        data = b"GET /health?q=" + b"a" * big + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    elif where == "many headers":
        data = b"GET /health HTTP/1.1\r\n" + b"".join(
            b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(big // 60)) + b"\r\n"
    else:  # head and body in one write: the head completes in the chunk that has it all
        data = (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Big: "
                + b"a" * big + b"\r\n\r\n{}")
    sock = connect(server)
    send_until_answered(sock, data)
    assert read_response(sock)[0] == 431
    closed_after(sock, 5)


def test_head_just_under_the_limit_is_served(server: Server) -> None:
    sock = connect(server)
    sock.sendall(head(server, x_pad="a" * 60_000))
    assert read_response(sock)[0] == 200


# -- timeouts -----------------------------------------------------------------------------
def test_half_a_head_then_silence_gets_408_and_close(limited: Server) -> None:
    sock = connect(limited)
    sock.sendall(head(limited)[:40])
    status, headers, body = read_response(sock)
    assert status == 408 and b"header_timeout_seconds" in body
    assert closed_after(sock, TIMEOUT + 3) < TIMEOUT + 3
    assert_serves(limited)


def test_a_head_dripped_byte_by_byte_is_cut_at_the_timeout(limited: Server) -> None:
    """The head timeout is for the whole head: progress does not extend it (slowloris)."""
    sock = connect(limited)
    start = time.monotonic()
    with pytest.raises(OSError):  # the server closes while we still drip
        for byte in head(limited):
            sock.send(bytes([byte]))
            time.sleep(0.2)
            if time.monotonic() - start > TIMEOUT + 5:
                pytest.fail("a dripped head kept the connection open")
        read_response(sock)
        pytest.fail("the dripped head was served")
    assert time.monotonic() - start < TIMEOUT + 5


def test_stalled_body_gets_408_and_close(limited: Server) -> None:
    sock = connect(limited)
    sock.sendall(head(limited, "/api/sos/v2.0/features", "POST", content_length="100",
                      content_type="application/json") + b'[{"name":')
    start = time.monotonic()
    status, _, body = read_response(sock)
    assert status == 408 and b"body_timeout_seconds" in body
    assert time.monotonic() - start < TIMEOUT + 3
    closed_after(sock, 3)
    assert_serves(limited)


def test_slow_but_moving_body_is_not_cut(limited: Server) -> None:
    """The body timeout is the longest pause between two parts, not the whole body."""
    body = b'[{"name": "slow-feature"}]'
    sock = connect(limited)
    sock.sendall(head(limited, "/api/sos/v2.0/features", "POST",
                      content_length=str(len(body)), content_type="application/json"))
    for i in range(0, len(body), 4):  # about 3 s in all, 0.4 s between parts
        time.sleep(0.4)
        sock.sendall(body[i:i + 4])
    status, _, answer = read_response(sock)
    assert status == 200 and b"'slow-feature' created" in answer, answer


def test_idle_keep_alive_connection_is_closed(limited: Server) -> None:
    sock = connect(limited)
    sock.sendall(head(limited))
    assert read_response(sock)[0] == 200
    waited = closed_after(sock, TIMEOUT + 3)  # no 408: nothing was asked
    assert waited >= TIMEOUT * 0.5


def test_connection_that_never_sends_is_closed(limited: Server) -> None:
    socks = [connect(limited) for _ in range(20)]
    for sock in socks:
        assert closed_after(sock, TIMEOUT + 3) < TIMEOUT + 3
    assert_serves(limited)


def test_keep_alive_connection_serves_several_requests(limited: Server) -> None:
    sock = connect(limited)
    for _ in range(3):
        sock.sendall(head(limited))
        assert read_response(sock)[0] == 200
        time.sleep(TIMEOUT / 4)


# -- connection cap -----------------------------------------------------------------------
def test_connections_past_the_limit_get_503(tmp_path_factory: pytest.TempPathFactory) -> None:
    s = start_server(tmp_path_factory.mktemp("cap"), "", "--max-connections", "3")
    try:
        held = [connect(s) for _ in range(3)]
        for sock in held:  # each one served, so each one counted
            sock.sendall(head(s))
            assert read_response(sock)[0] == 200
        extra = connect(s)
        extra.sendall(head(s))
        status, headers, body = read_response(extra)
        assert status == 503 and headers["retry-after"] == "1" and b"3 connections" in body
        closed_after(extra, 5)
        for sock in held:  # the ones within the limit are still served
            sock.sendall(head(s))
            assert read_response(sock)[0] == 200
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # once the server has seen the close, a new connection is served
            sock = connect(s)
            sock.sendall(head(s))
            if read_response(sock)[0] == 200:
                break
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.1)
    finally:
        s.stop()

"""The HTTP core against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest

import pyconnector
from pyconnector.config import Config
from pyconnector.http import HTTPCore


class Script:
    """What the server answers, in order; what it saw."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Any, float]] = []  # status, body, delay
        self.seen: list[dict[str, Any]] = []


@pytest.fixture
def flaky() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            script.seen.append({"method": self.command, "path": self.path,
                                            "headers": dict(self.headers),
                                            "body": self.rfile.read(length)})
            status, body, delay = script.answers.pop(0) if script.answers else (200, {}, 0)
            time.sleep(delay)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


def core(url: str, **kw: Any) -> HTTPCore:
    return HTTPCore(Config(url=url, api_key="k", **kw), backoff=0.01)


def test_idempotent_calls_retry_on_503_then_succeed(flaky) -> None:
    url, script = flaky
    script.answers = [(503, {}, 0), (502, {}, 0), (200, {"ok": 1}, 0)]
    assert core(url).request("GET", "/x") == {"ok": 1}
    assert len(script.seen) == 3
    assert script.seen[0]["headers"]["x-api-key"] == "k"


def test_posts_are_not_retried_on_503(flaky) -> None:
    url, script = flaky
    script.answers = [(503, {"code": 503, "message": "busy"}, 0)]
    with pytest.raises(pyconnector.ServerError) as err:
        core(url).request("POST", "/x", json={})
    assert err.value.status == 503 and err.value.message == "busy"
    assert len(script.seen) == 1


def test_retries_give_up_after_the_configured_number(flaky) -> None:
    url, script = flaky
    script.answers = [(503, {}, 0)] * 10
    with pytest.raises(pyconnector.ServerError):
        core(url, retries=2).request("GET", "/x")
    assert len(script.seen) == 3


def test_tcup_200_with_error_code_in_body_raises(flaky) -> None:
    url, script = flaky
    script.answers = [(200, {"code": 404, "message": "observations[0].sensor: sensor 'x' "
                             "not found", "field": "observations[0].sensor"}, 0)]
    with pytest.raises(pyconnector.NotFoundError) as err:
        core(url).request("POST", "/x", json={})
    assert err.value.field == "observations[0].sensor"


def test_api_errors_name_the_method_and_url(flaky) -> None:
    url, script = flaky
    script.answers = [(404, {"message": "sensor 'x' not found"}, 0),
                      (200, {"code": 400, "message": "bad", "field": "name"}, 0)]
    with pytest.raises(pyconnector.NotFoundError) as err:
        core(url).request("GET", "/api/sos/v2.0/sensors/x")
    target = f"{url}/api/sos/v2.0/sensors/x"
    assert (err.value.method, err.value.url) == ("GET", target)
    assert str(err.value) == f"404: sensor 'x' not found (GET {target})"
    assert (err.value.status, err.value.message) == (404, "sensor 'x' not found")
    with pytest.raises(pyconnector.BadRequestError, match=r"^400: bad \(POST .*/f\?a=1\)$") as err:
        core(url).request("POST", "/f", params={"a": 1}, json={})
    assert err.value.field == "name" and err.value.method == "POST"


def test_timeout_is_our_timeout_error(flaky) -> None:
    url, script = flaky
    script.answers = [(200, {}, 1.0)] * 2
    with pytest.raises(pyconnector.TimeoutError):
        core(url, timeout=0.2, retries=1).request("GET", "/slow")


def test_connection_refused_is_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(pyconnector.ConnectError, match="cannot connect"):
        core(f"http://127.0.0.1:{port}", retries=1).request("GET", "/x")


def test_jwt_mode_sends_a_short_lived_hs256_token(flaky) -> None:
    url, script = flaky
    key = "a-symmetric-key-of-at-least-32-bytes"
    core(url, jwt_key=key).request("GET", "/x")
    scheme, token = script.seen[0]["headers"]["authorization"].split()
    claims = jwt.decode(token, key, algorithms=["HS256"])
    assert scheme == "Bearer" and 0 < claims["exp"] - claims["iat"] <= 300

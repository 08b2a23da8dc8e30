"""The HTTP core against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest

import pyconnector
from pyconnector.config import Config
from pyconnector.http import HTTPCore, retry_after


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


# -- 429 and Retry-After, against a fake platform (httpx.MockTransport) -----------------------
def scripted(*answers: tuple[int, dict[str, str]], retries: int = 3
             ) -> tuple[HTTPCore, list[httpx.Request], list[float]]:
    """A real HTTPCore whose platform answers ``answers`` in order (then 200), and which
    notes each wait instead of sleeping."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def platform(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status, headers = queue.pop(0) if queue else (200, {})
        body = {"message": "too many requests"} if status >= 400 else {"ok": 1}
        return httpx.Response(status, headers=headers, json=body)

    http = HTTPCore(Config(url="http://platform.test", api_key="k", retries=retries),
                    transport=httpx.MockTransport(platform), backoff=0.01)
    waits: list[float] = []
    http._sleep = waits.append  # watch the waits instead of sitting them out
    return http, seen, waits


def test_429_is_retried_for_any_method_after_the_retry_after_wait() -> None:
    http, seen, waits = scripted((429, {"retry-after": "7"}))
    assert http.request("POST", "/api/x", json={"a": 1}) == {"ok": 1}
    assert [r.method for r in seen] == ["POST", "POST"]
    assert seen[1].content == b'{"a":1}'
    assert waits == [7.0]


def test_retries_on_429_stop_after_config_retries_with_a_rate_limit_error() -> None:
    http, seen, waits = scripted(*[(429, {"retry-after": "1"})] * 10, retries=2)
    with pytest.raises(pyconnector.RateLimitError) as err:
        http.request("DELETE", "/api/x")
    assert len(seen) == 3 and waits == [1.0, 1.0]
    assert err.value.status == 429 and isinstance(err.value, pyconnector.APIError)
    assert (err.value.method, err.value.url) == ("DELETE", "http://platform.test/api/x")
    assert str(err.value) == "429: too many requests (DELETE http://platform.test/api/x)"


def test_retry_after_on_503_is_capped_and_never_below_the_backoff() -> None:
    soon = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30),
                                       usegmt=True)
    http, seen, waits = scripted((503, {"retry-after": soon}), (503, {"retry-after": "3600"}),
                                 (503, {"retry-after": "0"}), retries=3)
    assert http.request("GET", "/api/x") == {"ok": 1}
    assert 25 < waits[0] <= 30  # an HTTP date: until then
    assert waits[1] == 60.0  # capped
    assert 0.04 <= waits[2] <= 0.06  # "0": the third attempt's backoff, not a busy loop


def test_429_without_retry_after_backs_off_exponentially() -> None:
    http, seen, waits = scripted((429, {}), (429, {"retry-after": "soon"}))
    assert http.request("GET", "/api/x") == {"ok": 1}
    assert 0.01 <= waits[0] <= 0.015 and 0.02 <= waits[1] <= 0.03


def test_a_streamed_upload_answered_429_is_not_sent_again(tmp_path) -> None:
    # Its body was read once from the file: a retry would send nothing.
    http, seen, waits = scripted((429, {"retry-after": "1"}))
    source = tmp_path / "obs.csv"
    source.write_text("time,sensor,t\n")
    with pytest.raises(pyconnector.RateLimitError):
        http.upload("POST", "/api/csv", source)
    assert len(seen) == 1 and waits == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after("120", now) == 120.0
    assert retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # already past
    assert retry_after("soon", now) is None and retry_after(None) is None
    assert retry_after("-5", now) is None

"""Errors a newcomer meets say what went wrong: a wrong base URL, an answer that is not
the platform's JSON, a quoted value in the config file, a time in no accepted form."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import pyconnector
from pyconnector.config import load

PAGE = ("<!DOCTYPE html><html><head><title>Welcome</title><style>body{color:red}</style>"
        "</head><body><h1>It works!</h1>" + "<p>filler text of a web page</p>" * 200
        + "</body></html>")


@pytest.fixture
def connect() -> Iterator[Any]:
    """Factory: ``connect(**kw)`` → a connector closed after the test."""
    made: list[pyconnector.connectors] = []

    def factory(conn: Any = None, **kw: Any) -> Any:
        made.append(conn if conn is not None else pyconnector.connectors(**kw))
        return made[-1]

    yield factory
    for conn in made:
        conn.close()


@pytest.fixture
def web_server() -> Iterator[str]:
    """Some other web server: HTML pages, 404 for everything under /api, a proxy's 502
    under /gateway."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            status = (404 if self.path.startswith("/api") else
                      502 if self.path.startswith("/gateway") else 200)
            data = PAGE.encode()
            self.send_response(status)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_404_from_another_server_names_the_url_and_says_it_is_not_the_platform(
        connect: Any, web_server: str) -> None:
    sos = connect(api_key="k", URL=web_server).SensorObservation()
    with pytest.raises(pyconnector.NotFoundError) as caught:
        sos.getCount()
    text = str(caught.value)
    assert f"{web_server}/api/sos/v2.0/count" in text
    assert "not a pyconnector platform" in text and "base URL" in text
    assert "text/html" in text and "Welcome It works!" in text
    assert "<" not in text and "{color" not in text  # markup and style dropped
    assert len(text) < 600, text  # an excerpt, not the page


def test_an_html_error_page_is_told_by_content_type_and_a_short_excerpt(
        connect: Any, web_server: str) -> None:
    http = connect(api_key="k", URL=web_server + "/gateway", retries=0).http
    with pytest.raises(pyconnector.ServerError) as caught:
        http.request("POST", "/x")
    e = caught.value
    assert e.status == 502
    assert e.message.startswith("Bad Gateway, not the platform's JSON (text/html, starting "
                                "'Welcome It works!"), e.message
    assert "<" not in e.message and "body{" not in e.message
    assert len(e.message) < 250, e.message


def test_a_200_page_that_is_not_json_raises_instead_of_answering_none(
        connect: Any, web_server: str) -> None:
    sos = connect(api_key="k", URL=web_server + "/site").SensorObservation()
    with pytest.raises(pyconnector.NotJSONError) as caught:
        sos.getCount()
    e = caught.value
    assert isinstance(e, pyconnector.PyConnectorError)
    assert (e.status, e.content_type) == (200, "text/html")
    assert e.url == f"{web_server}/site/api/sos/v2.0/count"
    assert str(e).startswith(f"GET {e.url} answered 200 OK, not the platform's JSON "
                             "(text/html, starting 'Welcome It works!")
    assert str(e).endswith("the platform answers JSON: is the base URL right?")
    assert len(str(e)) < 400, str(e)


def test_a_base_url_past_the_platform_gets_a_404_that_says_check_the_base_url(
        connect: Any, server: Any) -> None:
    conn = connect(api_key=server.new_key(), URL=server.url + "/pyconnector")
    with pytest.raises(pyconnector.NotFoundError) as caught:
        conn.SensorObservation().getCount()
    text = str(caught.value)
    assert text.startswith("404: Not Found: the platform has no such path; is the base URL "
                           "right?"), text
    assert f"(GET {server.url}/pyconnector/api/sos/v2.0/count)" in text
    # The platform's own 404s keep their message.
    sos = connect(server.connector()).SensorObservation()
    with pytest.raises(pyconnector.NotFoundError) as caught:
        sos.getSensor("no-such-sensor")
    assert "base URL" not in str(caught.value) and "no-such-sensor" in str(caught.value)


@pytest.mark.parametrize("written", ['"http://127.0.0.1:9"', "'http://127.0.0.1:9'",
                                     ' "http://127.0.0.1:9" ', "http://127.0.0.1:9"])
def test_a_quoted_value_in_the_config_file_is_read_without_its_quotes(
        tmp_path: Path, written: str) -> None:
    conf = tmp_path / "ConfigFile.conf"
    conf.write_text(f"URL = {written}\napi_key = \"abc\"  ; the tenant key\ntimeout = '5'\n")
    config = load(conf)
    assert (config.url, config.api_key, config.timeout) == ("http://127.0.0.1:9", "abc", 5.0)


def test_a_lone_quote_in_the_config_file_is_kept(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("[pyconnector]\nURL = http://h\napi_key = \"abc\n")
    assert load(conf).api_key == '"abc'


@pytest.mark.parametrize("when", ["yesterday", "2024-13-45T10:00:00Z", "31-FOO-2024 10:00:00"])
def test_a_time_in_no_accepted_form_names_the_accepted_ones(
        connect: Any, when: str) -> None:
    sos = connect(api_key="k", URL="http://127.0.0.1:9").SensorObservation()
    with pytest.raises(pyconnector.PyConnectorError) as caught:
        sos.data("ts1", {"temperature": 21.5}, time=when)
    e = caught.value
    assert isinstance(e, pyconnector.InputError) and isinstance(e, ValueError)
    text = str(e)
    assert text.startswith("time: ") and repr(when) in text
    for form in ("datetime", "epoch milliseconds", "ISO 8601", "dd-MMM-yyyy HH:mm:ss"):
        assert form in text, text


def test_query_times_are_checked_before_anything_is_sent(connect: Any) -> None:
    # Port 9 (discard) is not listened on: a request would raise ConnectError instead.
    sos = connect(api_key="k", URL="http://127.0.0.1:9",
                                 retries=0).SensorObservation()
    with pytest.raises(pyconnector.InputError, match=r"^end: .*'last week'.*Accepted: "):
        sos.getObservation(sensor="ts1", start="2024-05-01T00:00:00Z", end="last week")

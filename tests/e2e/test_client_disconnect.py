"""A client that leaves mid-request is not a server fault: no traceback, nothing stored."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.conftest import start_server


def test_a_body_cut_short_logs_no_traceback_and_stores_nothing(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        key = server.new_key()
        u = urlsplit(server.url)
        for path in ("/api/sos/v2.0/features", "/api/sos/v2.0/observations/csv"):
            with socket.create_connection((u.hostname, u.port)) as s:
                s.sendall((f"POST {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n"
                           "content-type: application/json\r\ncontent-length: 100000\r\n\r\n"
                           '[{"name": "half').encode())
                time.sleep(0.3)
        time.sleep(1)
        r = httpx.get(f"{server.url}/api/sos/v2.0/features", headers={"x-api-key": key})
        assert r.status_code == 200 and r.json() == []
        output = "".join(server.output)
        assert "Traceback" not in output, output[-3000:]
    finally:
        server.stop()

"""kill -9 mid-upload, then restart: the sweeper removes the leftovers (a real server)."""

from __future__ import annotations

import signal
import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from conftest import start_server

from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

MIB = 1 << 20


def _cut_upload(url: str, path: str, headers: dict[str, str], send: int) -> socket.socket:
    """Start a POST that announces 64 MiB and sends ``send`` bytes; the socket stays open."""
    u = urlparse(url)
    sock = socket.create_connection((u.hostname, u.port))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {u.hostname}\r\n{head}"
                  f"Content-Length: {64 * MIB}\r\n\r\n").encode())
    for _ in range(send // MIB):
        sock.sendall(b"x" * MIB)
    return sock


def _sizes(d: Path) -> dict[str, int]:
    return {str(p.relative_to(d)): p.stat().st_size for p in d.rglob("*") if p.is_file()}


def test_leftovers_of_a_killed_server_are_swept_at_restart(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    server = start_server(data, db_url)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    api_key = server.new_key(tenant)  # the tenant's first key: its administrator's
    dls_key = server.dls_key(tenant, "ana")
    auth = {"x-api-key": api_key, "x-dls-key": dls_key}
    r = httpx.post(f"{server.url}/api/dls/file", params={"filename": "kept.csv"},
                   content=b"a,b\n1,2\n", headers=auth)
    assert r.status_code == 201, r.text
    blobs, tmp = data / "blobs", data / "tmp"
    (kept,) = _sizes(blobs).keys()

    # In flight when the server dies: a 25 MiB data lake upload and a CSV ingest.
    dls_sock = _cut_upload(server.url, "/api/dls/file?filename=cut.bin", auth, 25 * MIB)
    csv_sock = _cut_upload(server.url, "/api/sos/v2.0/observations/csv",
                           {"x-api-key": api_key}, 3 * MIB)
    wait_for("the uploads should be staged", lambda: any(
        s >= 24 * MIB for k, s in _sizes(blobs).items() if k.startswith(".tmp/"))
        and any(s >= 2 * MIB for s in _sizes(tmp).values()), timeout=20)
    # And a blob written just before a kill that came before its catalog row: the kill
    # cannot be timed to that instant, so the test puts it where the upload would have.
    orphan = f"{kept.split('/')[0]}/{uuid.uuid4().hex}"
    (blobs / orphan).write_bytes(b"o" * (3 * MIB))
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    dls_sock.close()
    csv_sock.close()
    left = _sizes(blobs)
    assert sum(s for k, s in left.items() if k.startswith(".tmp/")) >= 24 * MIB
    assert sum(_sizes(tmp).values()) >= 2 * MIB
    assert orphan in left

    server = start_server(data, db_url, "--sweep-grace-seconds", "0")
    try:
        wait_for("the sweeper should remove the leftovers",
                 lambda: _sizes(blobs) == {kept: 8} and not _sizes(tmp), timeout=20)
        storage = httpx.get(f"{server.url}/api/dls/admin/storage",
                            headers={"x-api-key": api_key})
        assert storage.status_code == 200, storage.text
        found = httpx.get(f"{server.url}/api/dls/catalog", headers=auth).json()["result"]
        catalog = sum(f["size-bytes"] for f in found)
        assert storage.json()["used-bytes"] == catalog == sum(_sizes(blobs).values()) == 8
        r = httpx.get(f"{server.url}/api/dls/file",
                      params={"file-uri": f"{tenant}/ana/kept.csv"}, headers=auth)
        assert r.content == b"a,b\n1,2\n"
    finally:
        server.stop()

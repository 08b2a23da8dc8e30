"""An upload cut off mid-body leaves no visible partial file (a real server process)."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

import pyconnector
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _spooled(tmp: Path) -> int:
    """Bytes in the blob store's unfinished writes (files may vanish while we look)."""
    total = 0
    for p in tmp.iterdir():
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


@pytest.mark.parametrize("mode", ["RESTRICT", "OVERWRITE", "APPEND"])
def test_client_disconnect_mid_body_leaves_nothing(server, mode: str,
                                                   request: pytest.FixtureRequest) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    api_key = server.new_key(tenant)
    key = server.dls_key(tenant, "ana")
    conn = pyconnector.connectors(api_key=api_key, URL=server.url, dls_key=key)
    request.addfinalizer(conn.close)
    dls = conn.Datalake()
    blobs = server.data_dir / "blobs"
    if mode != "RESTRICT":  # an existing file that the cut-off upload would change
        src = server.data_dir.parent / f"{tenant}.csv"
        src.write_bytes(b"old content\n")
        dls.uploadFile(src, name="cut.csv")
    before = _files(blobs)
    url = urlparse(server.url)
    total = 64 << 20
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall((f"POST /api/dls/file?filename=cut.csv&mode={mode} HTTP/1.1\r\n"
                  f"Host: {url.hostname}\r\nx-api-key: {api_key}\r\nx-dls-key: {key}\r\n"
                  f"Content-Length: {total}\r\n\r\n").encode())
    chunk = b"x" * (1 << 20)
    for _ in range(8):  # 8 MiB of 64, then the client goes away
        sock.sendall(chunk)
    blob_tmp = blobs / ".tmp"
    # Go away only once the server is writing this body to an unfinished blob: the test
    # is about an upload in flight, not one refused before its first byte was stored.
    wait_for("the upload to reach the blob store's temporary area",
              lambda: _spooled(blob_tmp) >= len(chunk))
    sock.close()

    wait_for("the partial upload to be cleaned up", lambda: not any(blob_tmp.iterdir()))
    assert _files(blobs) == before
    found = dls.searchFile(filename="cut.csv")["result"]
    if mode == "RESTRICT":
        assert found == []
    else:
        assert [f["size-bytes"] for f in found] == [12]
        assert dls.getFile(f"{tenant}/ana/cut.csv", responseType="bytes") == b"old content\n"

"""An upload cut off mid-body leaves no visible partial file (a real server process)."""

from __future__ import annotations

import socket
import time
import uuid
from urllib.parse import urlparse

import pytest

import pyconnector

pytestmark = pytest.mark.e2e


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("mode", ["RESTRICT", "OVERWRITE", "APPEND"])
def test_client_disconnect_mid_body_leaves_nothing(server, mode: str) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    api_key = server.new_key(tenant)
    key = server.dls_key(tenant, "ana")
    dls = pyconnector.connectors(api_key=api_key, URL=server.url, dls_key=key).Datalake()
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
    time.sleep(0.3)
    blob_tmp = blobs / ".tmp"
    assert any(blob_tmp.iterdir()), "the upload should be in flight in the temporary area"
    sock.close()

    deadline = time.monotonic() + 10
    while any(blob_tmp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(blob_tmp.iterdir()), "the partial upload was not cleaned up"
    assert _files(blobs) == before
    found = dls.searchFile(filename="cut.csv")["result"]
    if mode == "RESTRICT":
        assert found == []
    else:
        assert [f["size-bytes"] for f in found] == [12]
        assert dls.getFile(f"{tenant}/ana/cut.csv", responseType="bytes") == b"old content\n"

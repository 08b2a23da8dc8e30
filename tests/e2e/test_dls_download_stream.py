"""Downloads of files bigger than a read chunk through a real server process: ranges
across chunks, a file replaced or removed while being read, a client that leaves."""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

import httpx
import pytest

from pyconnector_server.backends.blobs.base import CHUNK
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e

DLS = "/api/dls"
SIZE = 3 * CHUNK + 12_345  # four chunks, the last one short


@pytest.fixture
def dls(server):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    h = {"x-api-key": server.new_key(tenant), "x-dls-key": server.dls_key(tenant, "ana")}
    with httpx.Client(base_url=server.url, headers=h, timeout=60) as c:
        c.tenant = tenant  # type: ignore[attr-defined]
        yield c


def _upload(c: httpx.Client, name: str, data: bytes, mode: str = "RESTRICT") -> str:
    r = c.post(f"{DLS}/file", params={"filename": name, "mode": mode}, content=data)
    assert r.status_code in (200, 201), r.text
    return f"{c.tenant}/ana/{name}"  # type: ignore[attr-defined]


def _blob_paths(server) -> set[str]:
    return {str(p) for p in (server.data_dir / "blobs").rglob("*")
            if p.is_file() and ".tmp" not in p.parts}


def _open_blobs(server) -> set[str]:
    """Blob files the server process has open."""
    out = set()
    for fd in Path(f"/proc/{server.proc.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if "/blobs/" in target and "/.tmp/" not in target:
            out.add(target)
    return out


DATA = random.Random(5).randbytes(SIZE)


@pytest.mark.parametrize("header,span", [
    (None, (0, SIZE)),
    ("bytes=0-", (0, SIZE)),
    (f"bytes={CHUNK - 10}-{CHUNK + 9}", (CHUNK - 10, CHUNK + 10)),  # across a chunk's end
    (f"bytes={CHUNK}-{3 * CHUNK}", (CHUNK, 3 * CHUNK + 1)),  # whole chunks and one byte
    (f"bytes={2 * CHUNK + 1}-", (2 * CHUNK + 1, SIZE)),
    ("bytes=-20000", (SIZE - 20_000, SIZE)),  # the last 20,000 bytes: across the last end
    (f"bytes=5-{10 * SIZE}", (5, SIZE)),  # an end past the file is clipped
])
def test_ranges_of_a_file_of_several_chunks(dls, header, span) -> None:
    uri = _upload(dls, f"r{uuid.uuid4().hex[:6]}.bin", DATA)
    r = dls.get(f"{DLS}/file", params={"file-uri": uri},
                headers={"range": header} if header else {})
    start, end = span
    assert r.status_code == (206 if header else 200)
    assert r.content == DATA[start:end]
    assert int(r.headers["content-length"]) == end - start
    if r.status_code == 206:
        assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"


def test_a_file_replaced_mid_download_is_sent_whole_as_it_was(dls, server) -> None:
    """The download reads the blob it started with: the old file, whole, never a mix of
    old and new bytes; the next download gets the new file."""
    uri = _upload(dls, "moving.bin", DATA)
    new = bytes(reversed(DATA))
    with dls.stream("GET", f"{DLS}/file", params={"file-uri": uri}) as r:
        assert r.status_code == 200
        chunks = r.iter_raw()
        first = next(chunks)
        _upload(dls, "moving.bin", new, "OVERWRITE")  # a new blob; the old one is removed
        body = first + b"".join(chunks)
    assert body == DATA
    assert dls.get(f"{DLS}/file", params={"file-uri": uri}).content == new


def test_a_blob_gone_behind_the_catalog_is_a_404_saying_so(dls, server) -> None:
    before = _blob_paths(server)
    uri = _upload(dls, "gone.bin", b"x" * 100)
    (blob,) = _blob_paths(server) - before
    os.unlink(blob)
    r = dls.get(f"{DLS}/file", params={"file-uri": uri})
    assert r.status_code == 404
    assert "changed while being read" in r.json()["message"]


def test_a_client_that_leaves_mid_download_leaves_no_blob_open(dls, server) -> None:
    uri = _upload(dls, "big.bin", DATA * 8)  # bigger than the socket buffers hold
    with dls.stream("GET", f"{DLS}/file", params={"file-uri": uri}) as r:
        next(r.iter_raw())
        assert _open_blobs(server)  # the server is mid-download: the blob is open
    wait_for("the server to close the blob", lambda: not _open_blobs(server))
    assert dls.get(f"{DLS}/file", params={"file-uri": uri},
                   headers={"range": "bytes=0-9"}).content == DATA[:10]

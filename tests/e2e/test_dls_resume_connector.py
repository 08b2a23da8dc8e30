"""The connector's uploadFile resumes a resumable upload cut off mid-way (a real server
process, a TCP proxy in between that drops the connection after some bytes)."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from conftest import start_server, wait_for

import pyconnector
import pyconnector.datalake

pytestmark = pytest.mark.e2e

SIZE = 20 << 20


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the server; the first connection that carries more
    than ``cut_after`` bytes towards the server is dropped at that point (both ways)."""

    def __init__(self, target: tuple[str, int], cut_after: int) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cuts = 0
        self.forwarded = 0  # bytes client -> server, all connections
        self.forwarded_at_cut: int | None = None
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, to_server: bool) -> None:
        seen = 0
        try:
            while data := src.recv(1 << 16):
                if to_server:
                    with self.lock:
                        if self.cuts == 0 and seen + len(data) > self.cut_after:
                            self.cuts += 1
                            self.forwarded_at_cut = self.forwarded
                            for s in (src, dst):
                                s.shutdown(socket.SHUT_RDWR)
                            return
                        seen += len(data)
                        self.forwarded += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for s in self.socks:
            s.close()


class RecordingBar:
    """A progress bar that keeps every position it was moved to."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.n = 0
        self.positions: list[int] = []

    def __enter__(self) -> RecordingBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        self.n += n
        self.positions.append(self.n)


def test_upload_file_resumes_from_the_last_byte_stored(server, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       request: pytest.FixtureRequest) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    api_key = server.new_key(tenant)
    url = urlparse(server.url)
    proxy = CuttingProxy((url.hostname, url.port), cut_after=7 << 20)
    request.addfinalizer(proxy.close)
    conn = pyconnector.connectors(api_key=api_key, URL=f"http://127.0.0.1:{proxy.port}",
                                  dls_key=server.dls_key(tenant, "ana"))
    request.addfinalizer(conn.close)
    bars: list[RecordingBar] = []

    def progress(total: int | None, label: str, enabled: Any) -> RecordingBar:
        bars.append(RecordingBar(total))
        return bars[-1]

    monkeypatch.setattr(pyconnector.datalake, "_progress", progress)
    data = os.urandom(SIZE)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    dls = conn.Datalake()

    answer = dls.uploadFile(src, directory="runs", progress=True)

    assert proxy.cuts == 1  # the connection was dropped mid-upload …
    assert answer["sha256"] == hashlib.sha256(data).hexdigest()  # … and the file is whole
    uri = f"{tenant}/ana/runs/big.bin"
    assert answer["uri"] == uri and answer["size-bytes"] == SIZE
    back = dls.getFile(uri, responseType="bytes")
    assert hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest()
    # The bar: bytes of this file, ending at its size, moved back once at most (to the
    # bytes the server had stored, when it had shown more as sent).
    [bar] = bars
    assert bar.total == SIZE and bar.n == SIZE and max(bar.positions) == SIZE
    assert sum(b < a for a, b in zip(bar.positions, bar.positions[1:])) <= 1
    # What crossed after the cut is the rest of the file from the bytes stored (the
    # server had about 7 MiB), not the whole file again.
    assert proxy.forwarded_at_cut is not None
    assert proxy.forwarded - proxy.forwarded_at_cut < SIZE - (6 << 20)


def test_an_interrupted_upload_is_resumed_with_raw_http(server, tmp_path: Path) -> None:
    """TCUP's calls by hand: open, a chunk cut off by the client, the status tells the
    bytes stored, the rest from there completes the file."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = {"x-api-key": server.new_key(tenant), "x-dls-key": server.dls_key(tenant, "ana")}
    data = os.urandom(3 << 20)
    base = f"{server.url}/api/dls"
    with httpx.Client(headers=headers, timeout=60) as c:
        r = c.post(f"{base}/file/resumable", params={"filename": "h.bin",
                                                      "sizeInBytes": len(data)})
        uri = r.json()["uri"]
    url = urlparse(server.url)
    sock = socket.create_connection((url.hostname, url.port))
    head = (f"PUT /api/dls/file/resumable?file-uri={uri} HTTP/1.1\r\nHost: x\r\n"
            f"x-api-key: {headers['x-api-key']}\r\nx-dls-key: {headers['x-dls-key']}\r\n"
            f"Content-Range: bytes 0-{len(data) - 1}/{len(data)}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n")
    cut = (1 << 20) + 12345  # not a multiple of the server's write block: all is kept
    sock.sendall(head.encode() + data[:cut])
    sock.close()  # the client goes away after a bit more than 1 MiB of 3
    with httpx.Client(headers=headers, timeout=60) as c:
        def stored() -> int:
            return int(c.get(f"{base}/file/status/h.bin").json()["offset"])

        wait_for("the server to store the bytes that arrived", lambda: stored() == cut)
        r = c.put(f"{base}/file/resumable", params={"file-uri": uri}, content=data[cut:],
                  headers={"content-range": f"bytes {cut}-{len(data) - 1}/{len(data)}"})
        assert r.status_code == 201, r.text
        assert c.get(f"{base}/file", params={"file-uri": uri}).content == data


@pytest.mark.parametrize("size", [0, 1, 5000])
def test_small_and_empty_files_go_the_resumable_way_when_asked(server, tmp_path: Path,
                                                               request: pytest.FixtureRequest,
                                                               size: int) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    conn = pyconnector.connectors(api_key=server.new_key(tenant), URL=server.url,
                                  dls_key=server.dls_key(tenant, "ana"))
    request.addfinalizer(conn.close)
    dls = conn.Datalake()
    data = os.urandom(size)
    src = tmp_path / "small.bin"
    src.write_bytes(data)
    answer = dls.uploadFile(src, savepoint="v1", metadata={"site": "pune"}, resumable=True)
    assert answer["code"] == 201 and answer["sha256"] == hashlib.sha256(data).hexdigest()
    uri = f"{tenant}/ana/v1/small.bin"
    assert dls.getFile(uri, responseType="bytes") == data
    meta = {m["name"]: m["value"] for m in dls.getFileInfo(uri)["metadata"]}
    assert meta["site"] == "pune"
    # Again: RESTRICT refuses as the plain upload does; OVERWRITE replaces.
    with pytest.raises(pyconnector.ConflictError):
        dls.uploadFile(src, savepoint="v1", resumable=True)
    assert dls.uploadFile(src, savepoint="v1", mode="OVERWRITE",
                          resumable=True)["message"] == "overwritten"


def test_acknowledged_chunks_survive_a_killed_server(tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    """A chunk answered is on disk: after kill -9 and a restart on the same data dir the
    status says so, and the rest completes the file."""
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    request.addfinalizer(first.stop)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = {"x-api-key": first.new_key(tenant), "x-dls-key": first.dls_key(tenant, "ana")}
    data = os.urandom(2 << 20)
    half = len(data) // 2 + 7
    with httpx.Client(headers=headers, timeout=60) as c:
        base = f"{first.url}/api/dls"
        uri = c.post(f"{base}/file/resumable", params={
            "filename": "k.bin", "sizeInBytes": len(data)}).json()["uri"]
        r = c.put(f"{base}/file/resumable", params={"file-uri": uri}, content=data[:half],
                  headers={"content-range": f"bytes 0-{half - 1}/{len(data)}"})
        assert r.status_code == 200 and r.json()["offset"] == half
    first.stop(signal.SIGKILL)
    second = start_server(data_dir)
    request.addfinalizer(second.stop)
    with httpx.Client(headers=headers, timeout=60) as c:
        base = f"{second.url}/api/dls"
        assert c.get(f"{base}/file/status/k.bin").json()["offset"] == half
        r = c.put(f"{base}/file/resumable", params={"file-uri": uri, "offset": half},
                  content=data[half:])
        assert r.status_code == 201, r.text
        assert c.get(f"{base}/file", params={"file-uri": uri}).content == data

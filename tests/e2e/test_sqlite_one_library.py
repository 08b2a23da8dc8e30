"""The embedded store stays sound under the sequence that once killed the server (SIGBUS).

The process used to open the SQLite file through two SQLite libraries - Python's
``sqlite3`` and the copy inside the ADBC driver - and SQLite documents that as a
corruption hazard: each copy's ``close()`` drops the other's locks, the shared-memory
index shrank under a writer, and a 1M-row CSV ingest died inside ``executemany``.
"""

from __future__ import annotations

import io
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import Server

SOS = "/api/sos/v2.0"


def _mapped_sqlite_libraries(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {line.split()[-1] for line in maps.splitlines()
            if "sqlite" in line.lower() and "/" in line}


def _integrity(data_dir: Path) -> str:
    conn = sqlite3.connect(data_dir / "pyconnector.db", timeout=30)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def _csv(rows: int) -> bytes:
    buf = io.StringIO()
    buf.write("time,sensor,feature,v\n")
    start = 1_600_000_000_000
    for i in range(rows):
        buf.write(f"{start + i},s1,f1,{i % 1000}\n")
    return buf.getvalue().encode()


def test_the_sigbus_sequence_runs_on_one_sqlite_library(server: Server) -> None:
    h = {"x-api-key": server.new_key()}
    with httpx.Client(base_url=server.url, headers=h, timeout=300) as c:
        many = [{"name": f"bulk{i}"} for i in range(50_000)]
        r = c.post(f"{SOS}/features", json=many)
        assert r.status_code == 200 and r.json()["code"] == 201, r.text[:300]
        assert c.post(f"{SOS}/features", json={"name": "f1"}).json()["code"] == 201
        r = c.post(f"{SOS}/sensors", json={"name": "s1", "feature": "f1",
                                           "outputs": ["v"]})
        assert r.json()["code"] == 201, r.text
        r = c.get(f"{SOS}/observations", params={"sensor": "s1", "limit": 1})
        assert r.status_code == 200, r.text
        r = c.post(f"{SOS}/observations/csv", content=_csv(1_000_000),
                   headers={"content-type": "text/csv"})
        assert r.status_code == 200 and r.json()["code"] == 201, r.text[:300]
        assert server.proc.poll() is None, "the server died"
        r = c.get(f"{SOS}/observations", params={"sensor": "s1", "latest": 1,
                                                "format": "arrow"})
        assert r.status_code == 200
        n = c.get(f"{SOS}/observations", params={"sensor": "s1", "limit": 1}).json()
        assert n["observations"][0]["record"][0]["output"] == [{"name": "v", "value": 0.0}]
    libraries = _mapped_sqlite_libraries(server.pid)
    assert not [lib for lib in libraries if "adbc" in lib], libraries
    assert _integrity(server.data_dir) == "ok"


def test_concurrent_reads_and_writes_keep_the_file_sound(server: Server) -> None:
    key = server.new_key()
    h = {"x-api-key": key}
    with httpx.Client(base_url=server.url, headers=h, timeout=60) as c:
        c.post(f"{SOS}/features", json={"name": "cf"})
        for s in ("c1", "c2"):
            c.post(f"{SOS}/sensors", json={"name": s, "feature": "cf", "outputs": ["x", "y"]})
    errors: list[str] = []
    stop = time.monotonic() + 8

    def writer(sensor: str) -> None:
        n = 0
        with httpx.Client(base_url=server.url, headers=h, timeout=60) as c:
            while time.monotonic() < stop:
                obs = [{"sensor": sensor, "record": [
                    {"starttime": 1_700_000_000_000 + n * 1000 + i,
                     "output": [{"name": "x", "value": i}, {"name": "y", "value": n}]}
                    for i in range(200)]}]
                r = c.post(f"{SOS}/observations", json={"observations": obs})
                if r.status_code != 200 or r.json()["code"] != 201:
                    errors.append(f"write {r.status_code} {r.text[:200]}")
                n += 1

    def reader(fmt: str) -> None:
        with httpx.Client(base_url=server.url, headers=h, timeout=60) as c:
            while time.monotonic() < stop:
                r = c.get(f"{SOS}/observations", params={"sensor": ["c1", "c2"],
                                                        "format": fmt, "limit": 5000})
                if r.status_code != 200:
                    errors.append(f"read {r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=writer, args=(s,)) for s in ("c1", "c2")]
    threads += [threading.Thread(target=reader, args=(f,)) for f in ("json", "arrow", "csv")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert server.proc.poll() is None
    assert _integrity(server.data_dir) == "ok"

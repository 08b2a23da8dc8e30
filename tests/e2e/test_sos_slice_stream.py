"""A large CSV or Arrow observation answer is read a slice at a time, each in a
transaction of its own: a client that stalls mid-answer, or leaves, holds nothing in
the database (no open transaction, no cursor), on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from tests.conftest import start_server, wait_for

SOS = "/api/sos/v2.0"
ARROW = "application/vnd.apache.arrow.stream"
RECORDS = 60_000


def _load(url: str, key: str) -> None:
    h = {"x-api-key": key}
    with httpx.Client(base_url=url, headers=h, timeout=120) as c:
        assert c.post(f"{SOS}/features", json={"name": "plant"}).json()["code"] == 201
        for s in ("s1", "s2"):
            r = c.post(f"{SOS}/sensors", json={"name": s, "feature": "plant", "outputs": [
                {"name": "temperature"}, {"name": "status", "type": "text"}]})
            assert r.json()["code"] == 201
        lines = ["time,sensor,temperature,status"]
        lines += [f"{1_700_000_000_000 + i // 2},s{1 + i % 2},{i / 10},status {i}"
                  for i in range(RECORDS)]
        r = c.post(f"{SOS}/observations/csv", content="\n".join(lines).encode(),
                   headers={"content-type": "text/csv"})
        assert r.json()["code"] == 201, r.text


def _holders(db: str, data_dir: Path, app: str):
    """A function telling whether the server holds a read open in the database."""
    if not db:
        path = data_dir / "pyconnector.db"
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        conn.execute("CREATE TABLE IF NOT EXISTS probe_h6 (x)")

        def held() -> bool:
            # A write puts frames in the WAL; a checkpoint that truncates it waits for
            # every reader whose snapshot is older (busy = 1 while one is open).
            conn.execute("INSERT INTO probe_h6 VALUES (1)")
            return conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] != 0
        return held

    import psycopg

    def held_pg() -> bool:
        with psycopg.connect(db.split("?")[0], autocommit=True) as c:
            n = c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                          "AND state <> 'idle'", (app,)).fetchone()[0]
        return n > 0
    return held_pg


@pytest.mark.parametrize("fmt", ["arrow", "csv"])
def test_a_stalled_or_gone_client_holds_nothing_open(tmp_path: Path, own_db_url: str,
                                                     fmt: str) -> None:
    app = f"h6-{uuid.uuid4().hex[:8]}"
    db = f"{own_db_url}&application_name={app}" if own_db_url else ""
    server = start_server(tmp_path / "data", db, "--sos-slice-rows", "500")
    try:
        key = server.new_key()
        _load(server.url, key)
        held = _holders(db, tmp_path / "data", app)
        assert not held()
        params = {"feature": "plant", "format": fmt}
        with httpx.Client(timeout=60) as c, c.stream(
                "GET", f"{server.url}{SOS}/observations", params=params,
                headers={"x-api-key": key, "accept": ARROW}) as r:
            assert r.status_code == 200
            chunks = r.iter_raw()
            first = next(chunks)
            # The client reads nothing more: the server is mid-answer, waiting to send;
            # between two slices it holds no transaction.
            wait_for("the server to hold no read while the client stalls",
                     lambda: not held())
            body = first + b"".join(chunks)
        if fmt == "arrow":
            assert pa.ipc.open_stream(body).read_all().num_rows == RECORDS
        else:
            assert body.count(b"\n") == 1 + RECORDS
        # Now a client that leaves after the first bytes.
        with httpx.Client(timeout=60) as c, c.stream(
                "GET", f"{server.url}{SOS}/observations", params=params,
                headers={"x-api-key": key, "accept": ARROW}) as r:
            next(r.iter_raw())
        wait_for("the server to hold no read once the client left", lambda: not held())
        r = httpx.get(f"{server.url}{SOS}/observations", params={"sensor": "s1", "latest": 1},
                      headers={"x-api-key": key})
        assert r.status_code == 200 and r.json()["count"] == 1
        assert "Traceback" not in "".join(server.output)
    finally:
        server.stop()

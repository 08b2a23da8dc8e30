"""The platform as a user runs it: CLI, first start, crash durability, bulk round trips."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

import pyconnector
from pyconnector_server.process import ServerProcess
from tests.conftest import wait_for

pytestmark = pytest.mark.e2e


def test_first_start_prints_a_working_key_once(tmp_path: Path) -> None:
    with ServerProcess.start(tmp_path) as first:
        assert re.fullmatch(r"[0-9a-f]{64}", first.api_key)
        with pyconnector.connectors(api_key=first.api_key, URL=first.url) as conn:
            assert conn.SensorObservation().getCount()["sensors"] == 0
    with ServerProcess.start(tmp_path) as again:
        assert again.api_key == ""  # the store has tenants: no new default key
        with pyconnector.connectors(api_key=first.api_key, URL=again.url) as conn:
            assert conn.SensorObservation().getCount()["features"] == 0


def test_apikey_create_prints_only_the_key(server) -> None:
    out = subprocess.run([sys.executable, "-m", "pyconnector_server.cli", "apikey", "create",
                          "--data-dir", str(server.data_dir), "--tenant", "acme"],
                         capture_output=True, text=True, check=True)
    assert re.fullmatch(r"[0-9a-f]{64}\n", out.stdout)
    with pyconnector.connectors(api_key="0" * 64, URL=server.url) as conn, \
            pytest.raises(pyconnector.AuthenticationError):
        conn.SensorObservation().getCount()
    with pyconnector.connectors(api_key=out.stdout.strip(), URL=server.url) as conn:
        assert conn.SensorObservation().getCount()["sensors"] == 0


def test_health_openapi_and_docs_are_served(server) -> None:
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/api/sos/v2.0/observations" in spec["paths"]
    assert "swagger" in httpx.get(f"{server.url}/docs").text.lower()


def _seed(sos) -> None:
    sos.createFeature("f")
    sos.createSensor("s", "f", outputs=["v", {"name": "txt", "type": "text"}])


def test_acknowledged_writes_survive_kill_9(tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    platform = ServerProcess.start(tmp_path)
    conn = pyconnector.connectors(api_key=platform.api_key, URL=platform.url)
    request.addfinalizer(conn.close)
    sos = conn.SensorObservation()
    _seed(sos)
    for i in range(50):
        answer = sos.insertObservation(sos.data("s", {"v": i, "txt": f"n{i}"}, "f", time=i * 1000))
        assert answer["code"] == 201
    csv = tmp_path / "more.csv"
    csv.write_text("time,sensor,v\n" + "".join(f"{50_000 + i * 1000},s,{i}\n" for i in range(500)))
    assert sos.uploadObservationCSV(csv)["records"] == 500
    platform.stop(signal.SIGKILL)
    assert platform.proc.returncode == -signal.SIGKILL

    with ServerProcess.start(tmp_path) as again:
        with pyconnector.connectors(api_key=platform.api_key, URL=again.url) as conn:
            df = conn.SensorObservation().getObservation(sensor="s", responseType="dataframe")
        assert len(df) == 550
        assert df["v"].iloc[:50].tolist() == [float(i) for i in range(50)]


def test_interrupted_csv_upload_stores_nothing(server, request: pytest.FixtureRequest) -> None:
    key = server.new_key()
    conn = pyconnector.connectors(api_key=key, URL=server.url)
    request.addfinalizer(conn.close)
    sos = conn.SensorObservation()
    _seed(sos)
    tmp = server.data_dir / "tmp"
    before = set(tmp.glob("*.csv"))
    host, port = server.url.removeprefix("http://").split(":")
    body = "time,sensor,v\n" + "".join(f"{i},s,{i}\n" for i in range(20_000))

    def received() -> int:
        """Bytes of this upload in the server's temporary file (0 before it exists)."""
        return sum(p.stat().st_size for p in set(tmp.glob("*.csv")) - before if p.exists())

    with socket.create_connection((host, int(port))) as sock:
        head = (f"POST /api/sos/v2.0/observations/csv HTTP/1.1\r\nHost: {host}\r\n"
                f"x-api-key: {key}\r\ncontent-type: text/csv\r\n"
                f"content-length: {len(body) * 2}\r\n\r\n")
        sock.sendall(head.encode() + body.encode())  # half of what was announced
        # Cut the connection only once the server is spooling this body (its file buffer
        # may still hold a few KiB), so the test is about an upload in flight.
        wait_for("the server to spool the first half of the upload",
                  lambda: received() >= len(body) // 2)
    # The server notices the disconnect; nothing from the partial file is stored.
    wait_for("the partial upload's temporary file to be removed",
              lambda: not set(tmp.glob("*.csv")) - before)
    assert sos.getObservation(sensor="s", responseType="dataframe").empty


def test_csv_round_trip_between_tenants(any_server, tmp_path: Path,
                                        request: pytest.FixtureRequest) -> None:
    conns = [any_server.connector(), any_server.connector()]
    for conn in conns:
        request.addfinalizer(conn.close)
    a, b = (conn.SensorObservation() for conn in conns)
    for sos in (a, b):
        sos.createFeature("plant")
        sos.createSensor("m1", "plant")
    source = tmp_path / "in.csv"
    source.write_text(
        "time,sensor,feature,power,count,label\n"
        "03-JUL-2015 13:10:00 IST,m1,plant,1.25,3,\"a, b\"\n"
        "2015-07-03T07:41:00.123Z,m1,,2.5,,Température ☃\n"
        "1435909320000,m1,plant,,5,'quoted'\n", encoding="utf-8")
    assert a.uploadObservationCSV(source, progress=True)["records"] == 3
    down = a.downloadObservation(tmp_path / "out.csv", sensor="m1", progress=True)
    assert b.uploadObservationCSV(down)["values"] == 7
    fa = a.getObservation(sensor="m1", responseType="dataframe")
    fb = b.getObservation(sensor="m1", responseType="dataframe")
    pd.testing.assert_frame_equal(fa, fb)
    assert fa["label"].tolist() == ["a, b", "Température ☃", "'quoted'"]
    assert fa["time"].iloc[1] == pd.Timestamp("2015-07-03T07:41:00.123Z")

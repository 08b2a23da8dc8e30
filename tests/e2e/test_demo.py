"""`make demo` runs the tour in examples/demo.py; it must keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_service

pytestmark = pytest.mark.e2e
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_demo_runs_and_writes_its_files(tmp_path: Path) -> None:
    need_service("Mosquitto", "127.0.0.1", 1883)  # the demo's MQTT subscriber
    out = subprocess.run([sys.executable, str(DEMO)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2880 record(s), 8640 value(s) stored" in out.stdout
    # Routing: the rule passes the two readings over 30 °C to the WebSocket subscriber.
    assert "hot: 2024-07-01T12:01:00+00:00 31.2\nhot: 2024-07-01T12:03:00+00:00 33.0" in out.stdout
    assert "rule counts: 4 in, 2 matched, 2 out" in out.stdout
    # The same readings through amq.topic and the --mqtt bridge to an MQTT subscriber.
    assert ("mqtt hot: 2024-07-01T12:01:00+00:00 31.2\n"
            "mqtt hot: 2024-07-01T12:03:00+00:00 33.0") in out.stdout
    # Tasks: the job ran on the input zip; its log and downloaded output say what it computed.
    assert "T1 'summarise' in P1: DEPLOYED, runtime py, args ['24']" in out.stdout
    assert "run 1: succeeded, exit code 0" in out.stdout
    assert ("room1-climate: 48 readings, mean 22.75, 12 over 24\n"
            "room2-climate: 48 readings, mean 18.88, 0 over 24\n"
            "outputs: summary.csv (99 bytes)\n") in out.stdout
    summary = (tmp_path / "demo-output" / "summary.csv").read_text().splitlines()
    assert summary == ["sensor,readings,mean,max,over_24", "room1-climate,48,22.75,25.50,12",
                       "room2-climate,48,18.88,19.75,0"]
    # The delayed task ran by itself (on its schedule), with its own argument.
    assert ("delayed run 1: trigger schedule, succeeded\n"
            "room1-climate: 48 readings, mean 22.75, 36 over 21\n") in out.stdout
    assert "project P1 deleted with 2 task(s)" in out.stdout
    # Workflow: split → two stats steps side by side → report, each run once, in order,
    # the files passed down the links; the history as a table.
    assert ("definition 'room-report' version 'v1': (split → stats-room1) "
            "(split → stats-room2) (stats-room1 → report) (stats-room2 → report)") in out.stdout
    assert (": SUCCEEDED, split SUCCEEDED, stats-room1 SUCCEEDED, stats-room2 SUCCEEDED, "
            "report SUCCEEDED\n") in out.stdout
    assert "| baseTaskId | copiedTaskId | run |   state   | exitCode |" in out.stdout
    assert ("4 runs, one per task; the stats steps started after split ended: True; "
            "report started after both ended: True") in out.stdout
    assert ("room1: mean 22.75, max 25.50\nroom2: mean 18.88, max 19.75\n"
            "warmer on average: room1\n") in out.stdout
    assert "'room-report' version 'v1' deleted with 4 copied task(s)" in out.stdout
    assert "created: default/demo/demo/run1/flights.csv" in out.stdout
    assert "mean delay 15.2 min; summary says 15.2" in out.stdout
    png = tmp_path / "demo-output" / "room1-temperature.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = (tmp_path / "demo-output" / "observations.csv").read_text().splitlines()
    assert csv_lines[0] == "time,sensor,feature,humidity,status,temperature"
    assert len(csv_lines) == 1 + 2881

"""A short tour of pyconnector on the embedded platform (what `make demo` runs).

Starts `pyconnector serve` on a free port with SQLite in a temporary data dir, then uses
the connector as a user would: the Sensor Observation Service, Message Routing (a rule
and a WebSocket subscriber; and an MQTT subscriber when an MQTT broker answers on
127.0.0.1:1883, or at PYCONNECTOR_DEMO_MQTT=host:port, which the platform is bridged to),
the Task Service, the Workflow Service (a pipeline with a parallel branch), then the Data
Lake.
Files it makes (CSV, PNG) go to ./demo-output/.
"""

from __future__ import annotations

import csv
import math
import os
import socket
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import demo_datalake  # examples/demo_datalake.py, beside this file
import demo_routing  # examples/demo_routing.py
import demo_tasks  # examples/demo_tasks.py
import demo_workflow  # examples/demo_workflow.py

import pyconnector
from pyconnector_server.process import ServerProcess

OUT = Path("demo-output")


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def make_csv(path: Path, start: datetime, minutes: int) -> int:
    """A day of readings for two sensors, in the SOS CSV upload format."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "sensor", "feature", "temperature", "humidity", "status"])
        for i in range(minutes):
            t = (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            temp = 21 + 4 * math.sin(i / 1440 * 2 * math.pi)
            w.writerow([t, "room1-climate", "room1", f"{temp:.2f}", f"{45 + i % 7}",
                        "ok" if temp < 24.5 else "warm"])
            w.writerow([t, "room2-climate", "room2", f"{temp - 1.5:.2f}", f"{50 + i % 5}", "ok"])
    return 2 * minutes


def sos_tour(conn: pyconnector.connectors, workdir: Path) -> None:
    sos = conn.SensorObservation()

    step("Register features (a building with two rooms) and their sensors")
    print(sos.createFeature("building", description="Pune office",
                            location={"lat": 18.5204, "lon": 73.8567}))
    for room in ("room1", "room2"):
        print(sos.createFeature(room, parent="building"))
        print(sos.createSensor(f"{room}-climate", room, outputs=[
            {"name": "temperature", "type": "quantity", "unit": "Cel"},
            {"name": "humidity", "type": "quantity", "unit": "%"},
            {"name": "status", "type": "text"}]))

    step("Ingest observations as TCUP JSON (times in TCUP format, IST)")
    print(sos.insertObservation({"observations": [{
        "sensor": "room1-climate", "feature": "room1", "record": [
            {"starttime": "01-MAY-2024 05:00:00 IST",
             "output": [{"name": "temperature", "value": 19.5},
                        {"name": "humidity", "value": 40}, {"name": "status", "value": "ok"}]},
        ]}]}))

    step("Ingest a day of minute readings from a CSV file")
    path = workdir / "readings.csv"
    rows = make_csv(path, datetime(2024, 5, 1, tzinfo=timezone.utc), 1440)
    print(f"{path.name}: {rows} rows")
    print(sos.uploadObservationCSV(path))

    step("Counts, as JSON and as a pretty table")
    print(sos.getCount())
    print(sos.getCount(responseType="table"))

    step("The three latest records of room1, as TCUP JSON")
    latest = sos.getObservation(feature="room1", sensor="room1-climate", latest=3)
    for rec in latest["observations"][0]["record"]:
        print(rec["starttime"], {o["name"]: o["value"] for o in rec["output"]})

    step("Warm moments in room1 as a table (filter: temperature>24.9)")
    print(sos.getObservation(sensor="room1-climate", filter="temperature>24.9", limit=5,
                             responseType="table"))

    step("All of room1 as a DataFrame")
    df = sos.getObservation(feature="room1", sensor="room1-climate", responseType="dataframe")
    print(df.head())
    print(df.dtypes.to_string())
    print(f"{len(df)} records, mean temperature {df['temperature'].mean():.2f} °C")

    step("Download both rooms as CSV")
    OUT.mkdir(exist_ok=True)
    target = sos.downloadObservation(OUT / "observations.csv",
                                     sensor=["room1-climate", "room2-climate"])
    print(f"{target} ({target.stat().st_size} bytes)")

    step("Plot room1's temperature to PNG")
    plot_temperature(df, OUT / "room1-temperature.png")
    print(OUT / "room1-temperature.png")


def plot_temperature(df: Any, path: Path) -> Any:
    """Plot a DataFrame's temperature over its (UTC) time column to ``path``; return the
    figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(df["time"], df["temperature"], lw=1)
    ax.set_title("room1-climate: temperature")
    ax.set_ylabel("°C")
    # The times are UTC: the axis says so, and shows them in UTC whatever matplotlib's
    # configured time zone.
    ax.set_xlabel("time (UTC)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %H:%M", tz=timezone.utc))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return fig


def mqtt_broker() -> tuple[str, int] | None:
    """The MQTT broker to bridge to, if one answers (the demo runs without one)."""
    host, _, port = os.environ.get("PYCONNECTOR_DEMO_MQTT", "127.0.0.1:1883").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except (OSError, ValueError):
        print(f"(no MQTT broker at {host}:{port}: the MQTT subscriber is left out)")
        return None
    return host, int(port)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pyconnector-demo-") as tmp:
        workdir = Path(tmp)
        step("Start the platform: SQLite in a temporary data dir, a free port")
        mqtt = mqtt_broker()
        # A short MQTT session: the broker forgets the demo's bridge a minute after it.
        bridge = ("--mqtt", f"mqtt://{mqtt[0]}:{mqtt[1]}?session_expiry=60") if mqtt else ()
        with ServerProcess.start(workdir / "data", "", *bridge) as platform:
            print(f"platform at {platform.url}, tenant 'default' key {platform.api_key[:8]}…")
            with pyconnector.connectors(api_key=platform.api_key, URL=platform.url) as conn:
                sos_tour(conn, workdir)
                demo_routing.run(conn, mqtt)
                demo_tasks.run(conn, workdir / "tasks", OUT)
                demo_workflow.run(conn, workdir / "workflow")
            step("Create a data lake user 'demo' (as the tenant admin would, with the CLI)")
            dls_key = platform.cli("dlsuser", "create", "--tenant", "default",
                                   "--user", "demo").strip()
            print(f"x-dls-key for demo: {dls_key[:8]}…")
            with pyconnector.connectors(api_key=platform.api_key, URL=platform.url,
                                        dls_key=dls_key) as conn:
                demo_datalake.run(conn, workdir / "datalake")
    step("Done")
    return 0


if __name__ == "__main__":
    sys.exit(main())

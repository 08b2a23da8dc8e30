"""Goal 1 (and 4): CSV upload through the connector vs. the raw database write.

Ours: ``sos.uploadObservationCSV(path)`` of N records (10 sensors on one feature, three
quantities and one text property) into a fresh platform; the clock runs from the call
to its answer. Baseline, same run: the same 4·N value rows ``(sensor_id, property_id,
time_ms, num, text)``, built in memory before the clock starts, written into a fresh
``sos_observation`` table made with the server's own DDL:

* SQLite: one ``executemany`` of a plain ``INSERT`` and ``commit``, in a new file with
  the server's pragmas (``journal_mode=WAL``, ``synchronous=NORMAL``);
* PostgreSQL: ``COPY … FROM STDIN`` with psycopg 3 ``copy.write_row`` and ``commit``,
  in a fresh schema.

The rows go in the order the server writes them: per block of records, property by
property. Rates are records/s (one record = one CSV line = four values).
"""

from __future__ import annotations

import time
from typing import Any

from common import (
    PROPERTIES,
    SENSORS,
    Metric,
    Server,
    child,
    csv_path,
    frame,
    log,
    observation_ddl,
    pg_schema,
)

BLOCK = 65_536  # records per block in the baseline's row order (the server's is ~4 MiB)
COLUMNS = "sensor_id, property_id, time_ms, num, text"


# -- child steps --------------------------------------------------------------------------
def upload(url: str, api_key: str, path: str) -> dict[str, Any]:
    import pyconnector

    with pyconnector.connectors(api_key=api_key, URL=url, timeout=3600) as conn:
        sos = conn.SensorObservation()
        t0, c0 = time.perf_counter(), time.process_time()
        answer = sos.uploadObservationCSV(path, progress=False)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu": cpu, "records": answer["records"],
            "values": answer["values"]}


def value_rows(rows: int) -> list[tuple[int, int, int, float | None, str | None]]:
    """The value rows of the benchmark data (sensor ids 1-10, property ids 1-4)."""
    df = frame(rows)
    sid = df["sensor"].map({s: i + 1 for i, s in enumerate(SENSORS)}).tolist()
    tms = df["time_ms"].tolist()
    cols = {name: df[name].tolist() for name, _ in PROPERTIES}
    out: list[tuple[int, int, int, float | None, str | None]] = []
    for start in range(0, rows, BLOCK):
        end = min(start + BLOCK, rows)
        for pid, (name, ptype) in enumerate(PROPERTIES, 1):
            col = cols[name][start:end]
            s, t = sid[start:end], tms[start:end]
            if ptype == "text":
                out.extend(zip(s, [pid] * len(col), t, [None] * len(col), col))
            else:
                out.extend(zip(s, [pid] * len(col), t, col, [None] * len(col)))
    return out


def baseline_sqlite(rows: int, db_path: str) -> dict[str, Any]:
    import sqlite3

    data = value_rows(rows)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(observation_ddl("sqlite"))
    conn.commit()
    t0 = time.perf_counter()
    conn.executemany(f"INSERT INTO sos_observation ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", data)
    conn.commit()
    seconds = time.perf_counter() - t0
    n = conn.execute("SELECT count(*) FROM sos_observation").fetchone()[0]
    conn.close()
    return {"seconds": seconds, "values": n}


def baseline_pg(rows: int, url: str) -> dict[str, Any]:
    import psycopg

    data = value_rows(rows)
    with psycopg.connect(url) as conn:
        conn.execute(observation_ddl("postgresql"))
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY sos_observation ({COLUMNS}) "
                                            "FROM STDIN") as copy:
            for row in data:
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - t0
        n = conn.execute("SELECT count(*) FROM sos_observation").fetchone()[0]
    return {"seconds": seconds, "values": n}


# -- orchestration ----------------------------------------------------------------------------
def load(server: Server, rows: int) -> None:
    """Fill a server with the benchmark data, unmeasured (for the read benchmark alone)."""
    child("sos_csv_upload", "upload", url=server.url, api_key=server.api_key,
          path=str(csv_path(rows)))


def measure(server: Server, kind: str, rows: int, metrics: dict[str, Metric],
            scratch: str) -> None:
    path = csv_path(rows)
    rate = metrics.setdefault("csv_rate", Metric(
        kind, f"CSV upload {rows:,} records", "records/s", higher_is_better=True,
        base_name="sqlite3 executemany" if kind == "sqlite" else "psycopg COPY",
        goal="ratio >= 0.5"))
    crss = metrics.setdefault("csv_client_rss", Metric(
        kind, "CSV upload: client peak RSS", "MB", higher_is_better=False,
        goal="value < 300"))
    srss = metrics.setdefault("csv_server_rss", Metric(
        kind, "CSV upload: server peak RSS", "MB", higher_is_better=False,
        goal="value < 300", base_name="server idle RSS"))

    server.reset_peak()
    idle, cpu0 = server.peak_mb(), server.cpu()
    ours = child("sos_csv_upload", "upload", url=server.url, api_key=server.api_key,
                 path=str(path))
    assert ours["records"] == rows, ours
    server_peak, server_cpu = server.peak_mb(), server.cpu() - cpu0
    log(f"  {kind} upload: {ours['seconds']:.2f}s = {rows / ours['seconds']:,.0f} records/s; "
        f"CPU s client {ours['cpu']:.1f}, server {server_cpu:.1f}; peak RSS client "
        f"{ours['rss_mb']:.0f} MB, server {server_peak:.0f} MB (idle {idle:.0f})")

    if kind == "sqlite":
        base = child("sos_csv_upload", "baseline_sqlite", rows=rows, db_path=scratch)
    else:
        with pg_schema("pycbase") as url:
            base = child("sos_csv_upload", "baseline_pg", rows=rows, url=url)
    assert base["values"] == rows * len(PROPERTIES), base
    log(f"  {kind} baseline: {base['seconds']:.2f}s = {rows / base['seconds']:,.0f} records/s")

    rate.ours.append(rows / ours["seconds"])
    rate.base.append(rows / base["seconds"])
    crss.ours.append(ours["rss_mb"])
    srss.ours.append(server_peak)
    srss.base.append(idle)


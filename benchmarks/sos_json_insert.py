"""Goal 3 (and 4): JSON inserts of 100 observation records per request.

Ours: T client threads, each with its own ``pyconnector.connectors`` object, call
``sos.insertObservation(batch)`` where a batch is a list of 100 TCUP observation items
of one record each (``sos.data(sensor, {temperature, humidity, pressure, status},
feature, time)``: three quantities and one text, times in TCUP's format), spread over
the 10 sensors. Bodies are built before the clock starts; the clock runs from the
threads' start to the last answer. The rate is records/s.

Baseline, same run (issue 11's goal: ours ≥ 0.5 × the baseline): the same value rows
written straight to the database one transaction per batch (400 values, then commit),
one thread: ``sqlite3`` ``executemany`` into a fresh file with the server's pragmas, or
psycopg 3 ``executemany`` into a fresh schema. It shows the floor the database sets
for commit-per-request writes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from common import (
    FEATURE,
    PROPERTIES,
    SENSORS,
    STATUSES,
    T0_MS,
    Metric,
    child,
    log,
    observation_ddl,
    pg_schema,
    server_on,
)


def _values(g: int) -> dict[str, Any]:
    return {"temperature": 20.0 + (g % 97) / 10, "humidity": 40.0 + (g % 41) / 2,
            "pressure": 1000.0 + (g % 53) / 4, "status": STATUSES[g % len(STATUSES)]}


def _record(g: int) -> tuple[str, int]:
    """Sensor and time of global record number ``g`` (every (sensor, time) is new)."""
    return SENSORS[g % len(SENSORS)], T0_MS + (g // len(SENSORS)) * 1000


# -- child steps --------------------------------------------------------------------------
def insert(url: str, api_key: str, threads: int, batches: int, batch: int) -> dict[str, Any]:
    import pyconnector

    sos0 = pyconnector.connectors(api_key=api_key, URL=url).SensorObservation()
    bodies = [[[sos0.data(*_pair(k, j, i, batches, batch))["observations"][0]
                for i in range(batch)] for j in range(batches)] for k in range(threads)]
    conns = [pyconnector.connectors(api_key=api_key, URL=url, timeout=600)
             for _ in range(threads)]
    for c in conns:  # open each pooled connection before the clock starts
        c.SensorObservation().getCount()
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        sos = conns[k].SensorObservation()
        start.wait()
        try:
            for body in bodies[k]:
                answer = sos.insertObservation(body)
                if answer["code"] != 201:
                    raise RuntimeError(f"insert answered {answer['code']}: {answer['message']}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    for w in workers:
        w.join()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    return {"seconds": seconds, "cpu": cpu, "records": threads * batches * batch}


def _pair(k: int, j: int, i: int, batches: int, batch: int) -> tuple[str, dict[str, Any], str,
                                                                     int]:
    g = (k * batches + j) * batch + i
    sensor, t = _record(g)
    return sensor, _values(g), FEATURE, t


def _batches(total: int, batch: int) -> list[list[tuple[int, int, int, Any, Any]]]:
    out = []
    for b in range(total // batch):
        rows = []
        for g in range(b * batch, (b + 1) * batch):
            sensor, t = _record(g)
            sid = SENSORS.index(sensor) + 1
            vals = _values(g)
            for pid, (name, ptype) in enumerate(PROPERTIES, 1):
                v = vals[name]
                rows.append((sid, pid, t, None, v) if ptype == "text" else (sid, pid, t, v, None))
        out.append(rows)
    return out


def baseline_sqlite(records: int, batch: int, db_path: str) -> dict[str, Any]:
    import sqlite3

    data = _batches(records, batch)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(observation_ddl("sqlite"))
    conn.commit()
    sql = "INSERT INTO sos_observation VALUES (?, ?, ?, ?, ?)"
    t0 = time.perf_counter()
    for rows in data:
        conn.executemany(sql, rows)
        conn.commit()
    seconds = time.perf_counter() - t0
    conn.close()
    return {"seconds": seconds, "records": len(data) * batch}


def baseline_pg(records: int, batch: int, url: str) -> dict[str, Any]:
    import psycopg

    data = _batches(records, batch)
    with psycopg.connect(url) as conn:
        conn.execute(observation_ddl("postgresql"))
        conn.commit()
        sql = "INSERT INTO sos_observation VALUES (%s, %s, %s, %s, %s)"
        t0 = time.perf_counter()
        for rows in data:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)
            conn.commit()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "records": len(data) * batch}


# -- orchestration ----------------------------------------------------------------------------
def measure(kind: str, records: int, threads: list[int], batch: int,
            metrics: dict[str, Metric], scratch: str) -> None:
    """One run: ours with each client thread count (a fresh platform each), then the
    reference once."""
    base_name = ("raw " + ("sqlite3" if kind == "sqlite" else "psycopg")
                 + f" executemany, commit per {batch}")
    for n in threads:
        metrics.setdefault(f"json_rate_{n}", Metric(
            kind, f"JSON insert, {batch}/request, {n} client thread(s)", "records/s",
            higher_is_better=True, goal="ratio >= 0.5", base_name=base_name))
    srss = metrics.setdefault("json_server_rss", Metric(
        kind, "JSON insert: server peak RSS", "MB", higher_is_better=False,
        base_name="server idle RSS"))
    rates = []
    for n in threads:
        batches = max(1, records // (n * batch))
        total = batches * n * batch
        with server_on(kind, f"{kind}-json") as server:
            server.reset_peak()
            idle, cpu0 = server.peak_mb(), server.cpu()
            ours = child("sos_json_insert", "insert", url=server.url, api_key=server.api_key,
                         threads=n, batches=batches, batch=batch)
            server_peak, server_cpu = server.peak_mb(), server.cpu() - cpu0
        log(f"  {kind} JSON insert, {n} thread(s): {total:,} records in {ours['seconds']:.2f}s"
            f" = {total / ours['seconds']:,.0f}/s; CPU µs/record client "
            f"{ours['cpu'] / total * 1e6:.0f}, server {server_cpu / total * 1e6:.0f}; "
            f"server peak RSS {server_peak:.0f} MB")
        rates.append((n, total / ours["seconds"]))
        srss.ours.append(server_peak)
        srss.base.append(idle)

    total = max(1, records // batch) * batch
    if kind == "sqlite":
        base = child("sos_json_insert", "baseline_sqlite", records=total, batch=batch,
                     db_path=scratch)
    else:
        with pg_schema("pycbase") as url:
            base = child("sos_json_insert", "baseline_pg", records=total, batch=batch, url=url)
    log(f"  {kind} raw inserts, commit per {batch}: {total / base['seconds']:,.0f} records/s")
    for n, rate in rates:
        m = metrics[f"json_rate_{n}"]
        m.ours.append(rate)
        m.base.append(total / base["seconds"])

"""Goal 2 (and 4): a feature's observations as a DataFrame vs. ``pandas.read_sql``.

Ours: ``sos.getObservation(feature=…, responseType='dataframe')`` of all N records the
upload stored (one row per record: time, sensor, feature, one column per property);
the clock runs from the call to the DataFrame in hand. It is read twice: in the platform
that has just stored the records, then in a fresh platform process on the same data,
whose peak RSS is the read's own (goal < 300 MB). Baseline, same run, same
database (the server's ``pyconnector.db`` file, or its PostgreSQL schema):
``pandas.read_sql`` of the same pivot, straight from the database::

    SELECT time_ms, sensor_id, MAX(CASE WHEN property_id = 1 THEN num END) AS temperature,
           …, MAX(CASE WHEN property_id = 4 THEN text END) AS status
    FROM sos_observation WHERE sensor_id IN (…) GROUP BY sensor_id, time_ms

through ``sqlite3`` on SQLite and SQLAlchemy + psycopg 3 on PostgreSQL. The baseline
returns ids and epoch milliseconds; ours returns names and UTC timestamps. Times are
seconds; the ratio is ours/baseline (below 1 means faster than ``read_sql``).
"""

from __future__ import annotations

import time
from typing import Any

from common import FEATURE, PROPERTIES, SENSORS, Metric, Server, child, log, vmhwm_mb

from pyconnector_server.process import ServerProcess


# -- child steps --------------------------------------------------------------------------
def get_frame(url: str, api_key: str) -> dict[str, Any]:
    import pyconnector

    with pyconnector.connectors(api_key=api_key, URL=url, timeout=3600) as conn:
        sos = conn.SensorObservation()
        t0, c0 = time.perf_counter(), time.process_time()
        df = sos.getObservation(feature=FEATURE, responseType="dataframe")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": seconds, "cpu": cpu, "rows": len(df), "columns": list(df.columns)}


def _pivot_sql(conn: Any) -> str:
    """The pivot query, with the ids the server gave the sensors and properties."""
    import sqlalchemy as sa

    q = lambda sql: conn.execute(sa.text(sql)).all()  # noqa: E731
    sensors = {n: i for i, n in q("SELECT id, name FROM sos_sensor")}
    props = {n: i for i, n in q("SELECT id, name FROM sos_observed_property")}
    cols = ", ".join(
        f"MAX(CASE WHEN property_id = {props[name]} THEN {'text' if t == 'text' else 'num'} "
        f"END) AS {name}" for name, t in PROPERTIES)
    ids = ", ".join(str(sensors[s]) for s in SENSORS)
    return (f"SELECT time_ms, sensor_id, {cols} FROM sos_observation "
            f"WHERE sensor_id IN ({ids}) GROUP BY sensor_id, time_ms")


def baseline_sqlite(db_path: str) -> dict[str, Any]:
    import sqlite3

    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{db_path}")
    with engine.connect() as c:
        sql = _pivot_sql(c)
    engine.dispose()
    conn = sqlite3.connect(db_path)
    t0 = time.perf_counter()
    df = pd.read_sql(sql, conn)
    seconds = time.perf_counter() - t0
    conn.close()
    return {"seconds": seconds, "rows": len(df), "columns": list(df.columns)}


def baseline_pg(url: str) -> dict[str, Any]:
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.connect() as c:
        sql = _pivot_sql(c)
    with engine.connect() as c:
        t0 = time.perf_counter()
        df = pd.read_sql(sa.text(sql), c)
        seconds = time.perf_counter() - t0
    engine.dispose()
    return {"seconds": seconds, "rows": len(df), "columns": list(df.columns)}


# -- orchestration ----------------------------------------------------------------------------
def measure(server: Server, kind: str, rows: int, metrics: dict[str, Metric]) -> None:
    """Ours, then the baseline, in the platform that just stored the records; then ours
    again in a fresh platform process on the same data, whose peak RSS is the read's
    alone (the first process keeps what the upload allocated: mimalloc and glibc hold
    freed memory for reuse, so its peak starts at its RSS after the upload)."""
    t = metrics.setdefault("df_time", Metric(
        kind, f"getObservation dataframe {rows:,} records", "s", higher_is_better=False,
        base_name="pandas.read_sql", goal="ratio <= 1.0"))
    crss = metrics.setdefault("df_client_rss", Metric(
        kind, "dataframe: client peak RSS", "MB", higher_is_better=False,
        base_name="read_sql peak RSS"))
    srss = metrics.setdefault("df_server_rss", Metric(
        kind, "dataframe: server peak RSS, after the upload", "MB", higher_is_better=False,
        base_name="server RSS before the read"))
    ft = metrics.setdefault("df_fresh_time", Metric(
        kind, f"getObservation dataframe {rows:,} records, fresh server", "s",
        higher_is_better=False, base_name="pandas.read_sql", goal="ratio <= 1.0"))
    frss = metrics.setdefault("df_fresh_rss", Metric(
        kind, "dataframe: server peak RSS, fresh server", "MB", higher_is_better=False,
        base_name="fresh server idle RSS", goal="value < 300"))

    server.reset_peak()
    idle, cpu0 = server.peak_mb(), server.cpu()
    ours = child("sos_dataframe", "get_frame", url=server.url, api_key=server.api_key)
    assert ours["rows"] == rows, ours
    server_peak, server_cpu = server.peak_mb(), server.cpu() - cpu0
    if kind == "sqlite":
        base = child("sos_dataframe", "baseline_sqlite", db_path=str(server.sqlite_path))
    else:
        base = child("sos_dataframe", "baseline_pg", url=server.db)
    assert base["rows"] == rows, base
    log(f"  {kind} dataframe: {ours['seconds']:.2f}s; CPU s client {ours['cpu']:.1f}, server "
        f"{server_cpu:.1f}; peak RSS client {ours['rss_mb']:.0f} MB, server "
        f"{server_peak:.0f} MB (from {idle:.0f}); read_sql {base['seconds']:.2f}s "
        f"({base['rss_mb']:.0f} MB)")
    t.ours.append(ours["seconds"])
    t.base.append(base["seconds"])
    crss.ours.append(ours["rss_mb"])
    crss.base.append(base["rss_mb"])
    srss.ours.append(server_peak)
    srss.base.append(idle)

    server.stop()
    fresh = ServerProcess.start(server.data_dir, server.db, timeout=90)
    try:
        fresh_idle = vmhwm_mb(fresh.proc.pid)
        again = child("sos_dataframe", "get_frame", url=fresh.url, api_key=server.api_key)
        assert again["rows"] == rows, again
        fresh_peak = vmhwm_mb(fresh.proc.pid)
    finally:
        fresh.stop()
    log(f"  {kind} dataframe, fresh server: {again['seconds']:.2f}s; server peak RSS "
        f"{fresh_peak:.0f} MB (idle {fresh_idle:.0f} MB)")
    ft.ours.append(again["seconds"])
    ft.base.append(base["seconds"])
    frss.ours.append(fresh_peak)
    frss.base.append(fresh_idle)

"""Shared pieces of the benchmarks: servers, databases, data files, memory, results.

Everything measured runs in a process of its own: the platform (``pyconnector serve``)
and each client or baseline step (:func:`child`), so peak memory (``VmHWM`` from
``/proc/<pid>/status``) belongs to exactly one side. Times are taken inside the child,
around the operation only (imports and data preparation excluded).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyconnector_server.process import ServerProcess

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA = BENCH_DIR / ".data"

PG_BASE_URL = os.environ.get("PYCONNECTOR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")

FEATURE = "bench-plant"
SENSORS = [f"bench-s{i:02d}" for i in range(10)]
# Three quantities and one text property, as in the issue.
PROPERTIES = [("temperature", "quantity"), ("humidity", "quantity"),
              ("pressure", "quantity"), ("status", "text")]
STATUSES = ["ok", "warn", "alarm", "maintenance"]
T0_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


# -- memory ------------------------------------------------------------------------------
def _status_kb(pid: int | str, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def vmhwm_mb(pid: int | str = "self") -> float:
    """Peak resident set size of a process so far, in MB (10^6 bytes)."""
    return _status_kb(pid, "VmHWM") * 1024 / 1e6


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# -- child processes ------------------------------------------------------------------------
def child(module: str, func: str, timeout: float = 3600, **kwargs: Any) -> dict[str, Any]:
    """Run ``benchmarks/<module>.py:<func>(**kwargs)`` in a fresh interpreter.

    The function returns a dict (with ``seconds`` when it timed something); the child
    adds its own peak RSS as ``rss_mb``.
    """
    args = [sys.executable, str(BENCH_DIR / "child.py"), module, func, json.dumps(kwargs)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(f"{module}.{func} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last)


# -- the platform -------------------------------------------------------------------------
class Server(ServerProcess):
    """The platform under test, with what the benchmarks read off its process."""

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "pyconnector.db"

    def peak_mb(self) -> float:
        return vmhwm_mb(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def reset_peak(self) -> None:
        if not reset_peak(self.proc.pid):
            raise RuntimeError("cannot reset the server's VmHWM (/proc/<pid>/clear_refs)")


def start_server(data_dir: Path, db: str = "") -> Server:
    """Start ``pyconnector serve`` on a free port and an empty data dir; wait for /health."""
    p = ServerProcess.start(data_dir, db, timeout=90)
    if not p.api_key:
        p.stop()
        raise RuntimeError("the data dir was not empty: no first-start API key")
    return Server(p.proc, p.url, p.api_key, p.data_dir, p.db, p.output)


def setup_sos(url: str, api_key: str) -> None:
    """The feature, its ten sensors and the four declared outputs every benchmark uses."""
    import pyconnector

    with pyconnector.connectors(api_key=api_key, URL=url) as conn:
        sos = conn.SensorObservation()
        sos.createFeature(FEATURE, description="benchmark plant")
        outputs = [{"name": n, "type": t} for n, t in PROPERTIES]
        sos.createSensors([{"name": s, "feature": FEATURE, "outputs": outputs}
                           for s in SENSORS])


# -- databases ---------------------------------------------------------------------------
def pg_admin_url() -> str:
    """The base PostgreSQL URL, trying role ``root`` when ``postgres`` is refused."""
    import psycopg

    try:
        psycopg.connect(PG_BASE_URL, autocommit=True, connect_timeout=5).close()
        return PG_BASE_URL
    except psycopg.OperationalError:
        alt = PG_BASE_URL.replace("postgres@", "root@")
        psycopg.connect(alt, autocommit=True, connect_timeout=5).close()
        return alt


@contextmanager
def pg_schema(prefix: str = "pycbench") -> Iterator[str]:
    """A fresh schema on database `test`, dropped afterwards; yields its libpq URL."""
    import psycopg

    base = pg_admin_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def observation_ddl(dialect: str) -> str:
    """The server's own CREATE TABLE for ``sos_observation``, compiled for ``dialect``."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql, sqlite

    from pyconnector_server.sos.tables import observation

    d = sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()
    return str(sa.schema.CreateTable(observation).compile(dialect=d)).strip()


@contextmanager
def target(kind: str, name: str) -> Iterator[tuple[Path, str]]:
    """A fresh data dir (and, for PostgreSQL, a fresh schema): ``(data_dir, db_url)``."""
    data_dir = DATA / "run" / f"{name}-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir(parents=True)
    try:
        if kind == "sqlite":
            yield data_dir, ""
        else:
            with pg_schema() as url:
                yield data_dir, url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def server_on(kind: str, name: str) -> Iterator[Server]:
    """A fresh platform on ``kind`` with the benchmark feature and sensors."""
    with target(kind, name) as (data_dir, db):
        server = start_server(data_dir, db)
        try:
            setup_sos(server.url, server.api_key)
            yield server
        finally:
            server.stop()


# -- data -------------------------------------------------------------------------------
def csv_path(rows: int) -> Path:
    """The CSV of ``rows`` observation records (generated once, kept in .data/)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"observations-{rows}.csv"
    if not path.exists():
        tmp = path.with_suffix(".part")
        write_csv(tmp, rows)
        tmp.replace(path)
    return path


def frame(rows: int) -> Any:
    """The benchmark records as a DataFrame: every sensor reports every second, in turn."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(42)
    i = np.arange(rows)
    n = len(SENSORS)
    return pd.DataFrame({
        "time_ms": T0_MS + (i // n) * 1000,
        "sensor": np.array(SENSORS)[i % n],
        "temperature": np.round(rng.normal(21.0, 3.0, rows), 2),
        "humidity": np.round(rng.uniform(20.0, 80.0, rows), 1),
        "pressure": np.round(rng.normal(1013.25, 8.0, rows), 2),
        "status": np.array(STATUSES)[rng.choice(len(STATUSES), rows, p=[.85, .1, .04, .01])],
    })


def write_csv(path: Path, rows: int) -> None:
    """``time,sensor,feature,temperature,humidity,pressure,status`` (csvio.py's format)."""
    import numpy as np
    import pandas as pd

    df = frame(rows)
    times = np.datetime_as_string(df["time_ms"].to_numpy().astype("datetime64[ms]"),
                                  unit="ms")
    out = pd.DataFrame({"time": pd.Series(times) + "Z", "sensor": df["sensor"],
                        "feature": FEATURE})
    for name, _ in PROPERTIES:
        out[name] = df[name]
    out.to_csv(path, index=False, lineterminator="\n")


# -- results --------------------------------------------------------------------------------
@dataclass
class Metric:
    """One measured quantity over several runs, compared with a baseline and a goal."""

    db: str
    name: str
    unit: str
    ours: list[float] = field(default_factory=list)
    base: list[float] = field(default_factory=list)
    base_name: str = ""
    higher_is_better: bool = True
    goal: str = ""  # e.g. "ratio >= 0.5", "value >= 20000", "value < 300"
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.ours) if self.ours else None

    @property
    def base_median(self) -> float | None:
        return statistics.median(self.base) if self.base else None

    @property
    def ratio(self) -> float | None:
        """Median of the per-run ratios ours/baseline (each run's pair ran together)."""
        pairs = [o / b for o, b in zip(self.ours, self.base) if b]
        return statistics.median(pairs) if pairs else None

    def met(self) -> bool | None:
        if not self.goal or self.median is None:
            return None
        what, op, limit = self.goal.split()
        x = self.ratio if what == "ratio" else self.median
        if x is None:
            return None
        return {">=": x >= float(limit), "<=": x <= float(limit), "<": x < float(limit),
                ">": x > float(limit)}[op]

    def as_dict(self) -> dict[str, Any]:
        return {"db": self.db, "name": self.name, "unit": self.unit, "ours": self.ours,
                "baseline": self.base, "baseline_name": self.base_name,
                "median": self.median, "baseline_median": self.base_median,
                "ratio": self.ratio, "goal": self.goal, "met": self.met(), "note": self.note}


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table(metrics: list[Metric], markdown: bool = False) -> str:
    head = ["db", "metric", "median", "runs", "baseline", "baseline median", "ratio",
            "goal", "met"]
    rows = []
    for m in metrics:
        met = m.met()
        rows.append([m.db, f"{m.name} ({m.unit})", fmt(m.median),
                     " / ".join(fmt(x) for x in m.ours), m.base_name or "-",
                     fmt(m.base_median), fmt(m.ratio), m.goal or "-",
                     "-" if met is None else ("met" if met else "NOT MET")])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

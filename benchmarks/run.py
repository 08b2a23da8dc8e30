"""Run the Sensor Observation Service benchmarks and print results with ratios and goals.

    .venv/bin/python benchmarks/run.py                      # the issue's sizes, 3 runs, both DBs
    .venv/bin/python benchmarks/run.py --rows 100000 --runs 1 --db sqlite   # a quick look
    .venv/bin/python benchmarks/run.py --only csv,dataframe --markdown

Each run starts fresh platforms (``pyconnector serve`` on a new data dir, and for
PostgreSQL a new schema on ``test``), measures ours, then the baseline in the same run.
The table shows the median over runs, every run's value, the baseline's median and
the median of the per-run ratios ours/baseline. Results also go to
``benchmarks/.data/results-<time>.json``. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sos_csv_upload  # noqa: E402
import sos_dataframe  # noqa: E402
import sos_json_insert  # noqa: E402
from common import DATA, Metric, csv_path, log, server_on, table  # noqa: E402

BENCHES = ("csv", "dataframe", "json")


def machine() -> dict[str, str]:
    import os

    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    info = {"cpus": str(os.cpu_count()), "cpu": cpu, "memory": mem,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "kernel": platform.release()}
    try:
        import psycopg
        from common import pg_admin_url

        with psycopg.connect(pg_admin_url(), connect_timeout=5) as c:
            info["postgresql"] = c.execute("SHOW server_version").fetchone()[0]
    except Exception as exc:  # noqa: BLE001 - informative only
        info["postgresql"] = f"unavailable ({type(exc).__name__})"
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000,
                   help="CSV records to upload and read back (default: 1,000,000)")
    p.add_argument("--runs", type=int, default=3, help="runs of each benchmark (default: 3)")
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--only", default=",".join(BENCHES),
                   help=f"comma-separated subset of {', '.join(BENCHES)}")
    p.add_argument("--json-records", type=int, default=None,
                   help="records for the JSON insert benchmark (default: rows/5)")
    p.add_argument("--batch", type=int, default=100, help="records per JSON request")
    p.add_argument("--threads", default="1,2,4",
                   help="client thread counts for the JSON insert, comma-separated; each "
                        "is measured on its own (default: 1,2,4)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = p.parse_args(argv)

    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(only) - set(BENCHES)
    if unknown:
        p.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    threads = [int(n) for n in args.threads.split(",") if n.strip()]
    json_records = args.json_records or max(args.rows // 5, args.batch * max(threads))
    info = machine()
    log("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))

    metrics: dict[str, dict[str, Metric]] = {k: {} for k in kinds}
    scratch_dir = DATA / "run"
    scratch_dir.mkdir(parents=True, exist_ok=True)
    if "csv" in only or "dataframe" in only:
        log(f"data: {csv_path(args.rows)}")
    for run in range(1, args.runs + 1):
        for kind in kinds:
            m = metrics[kind]
            if "csv" in only or "dataframe" in only:
                log(f"run {run}/{args.runs} {kind}: CSV upload + dataframe")
                with server_on(kind, f"{kind}-csv") as server:
                    scratch = scratch_dir / f"base-{uuid.uuid4().hex[:8]}.db"
                    try:
                        if "csv" in only:
                            sos_csv_upload.measure(server, kind, args.rows, m, str(scratch))
                        else:
                            sos_csv_upload.load(server, args.rows)
                    finally:
                        for f in scratch_dir.glob(scratch.name + "*"):
                            f.unlink()
                    if "dataframe" in only:
                        sos_dataframe.measure(server, kind, args.rows, m)
            if "json" in only:
                log(f"run {run}/{args.runs} {kind}: JSON insert")
                scratch = scratch_dir / f"base-{uuid.uuid4().hex[:8]}.db"
                try:
                    sos_json_insert.measure(kind, json_records, threads, args.batch, m,
                                            str(scratch))
                finally:
                    for f in scratch_dir.glob(scratch.name + "*"):
                        f.unlink()

    flat = [x for k in kinds for x in metrics[k].values()]
    print()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"rows {args.rows:,}, runs {args.runs}, JSON records {json_records:,} "
          f"({args.batch}/request; client threads {args.threads})")
    print(table(flat, markdown=args.markdown))
    out = DATA / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"machine": info, "args": vars(args),
                               "metrics": [x.as_dict() for x in flat]}, indent=2))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

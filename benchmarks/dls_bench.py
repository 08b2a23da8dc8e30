"""Data Lake Service benchmarks, standalone: ``.venv/bin/python benchmarks/dls_bench.py``.

1. Upload and download of a 1 GiB file through the connector, against ``cp`` of the same
   file on the same disk in the same run (MB/s and ratio; goal >= 0.5 each way); the
   download also with ``curl`` to a file on that disk (goal >= 0.5 x cp) and to
   ``/dev/null`` (the server's read path alone), with the peak RSS (VmHWM) of the client
   process and of the server (goal < 150 MB each).
2. Catalog search by a metadata expression over 100,000 files (p50; goal < 100 ms). The
   100,000 catalog rows are inserted in bulk into the DLS tables of the platform's store
   (one executemany per table), not by 100,000 HTTP uploads; the searches go through the
   connector and the HTTP API.
3. ``getFile(..., responseType='dataframe')`` of a 1,000,000-row CSV against
   ``pandas.read_csv`` of the local file (ratio; goal <= 1.5).

Each timed client step runs in a child process of its own so its VmHWM is its own.
Options: ``--runs N`` (default 3; medians are reported), ``--db URL`` (PostgreSQL instead
of SQLite), ``--size-mib N`` (default 1024), ``--files N`` (default 100000).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / ".data"
sys.path.insert(0, str(ROOT))

MB = 1_000_000
SITES = ["pune", "mumbai", "goa", "delhi", "chennai", "kolkata", "bengaluru", "hyderabad",
         "jaipur", "lucknow"]


def vmhwm_mb(pid: int | str = "self") -> float:
    """Peak resident set size of a process, in MB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError("no VmHWM")


# -- child steps (run as `dls_bench.py --child STEP JSON`) -------------------------------------
def _dls(args: dict[str, Any]) -> Any:
    import pyconnector

    conn = pyconnector.connectors(api_key=args["api_key"], URL=args["url"],
                                  dls_key=args["dls_key"], timeout=600)
    return conn.Datalake()


def child_upload(args: dict[str, Any]) -> dict[str, Any]:
    dls = _dls(args)
    t = time.perf_counter()
    answer = dls.uploadFile(args["path"], name=args["name"], mode="OVERWRITE", progress=False)
    return {"seconds": time.perf_counter() - t, "size": answer["size-bytes"]}


def child_download(args: dict[str, Any]) -> dict[str, Any]:
    dls = _dls(args)
    t = time.perf_counter()
    dls.downloadFile(args["uri"], target=args["path"], progress=False)
    return {"seconds": time.perf_counter() - t}


def child_search(args: dict[str, Any]) -> dict[str, Any]:
    dls = _dls(args)
    page = dls.searchFile(metadata=args["expr"], pageSize=100)  # warm-up
    times = []
    for _ in range(args["repeat"]):
        t = time.perf_counter()
        page = dls.searchFile(metadata=args["expr"], pageSize=100)
        times.append(time.perf_counter() - t)
    return {"times": times, "count": page["count"], "returned": len(page["result"])}


def child_dataframe(args: dict[str, Any]) -> dict[str, Any]:
    """Two reads in one process: the first (cold: connection, lazy imports) and the second."""
    import pandas as pd

    if args["how"] == "pandas":
        def read() -> Any:
            return pd.read_csv(args["path"])
    else:
        dls = _dls(args)

        def read() -> Any:
            return dls.getFile(fileUri=[args["uri"]], responseType="dataframe")
    times = []
    for _ in range(2):
        t = time.perf_counter()
        df = read()
        times.append(time.perf_counter() - t)
    return {"cold": times[0], "warm": times[1], "rows": len(df), "cols": len(df.columns)}


def child_curl(args: dict[str, Any]) -> dict[str, Any]:
    """``curl`` of the file from the platform: to ``path`` (a file on the same disk as
    ``cp``'s) or ``/dev/null`` (the server's read path and loopback alone)."""
    url = f"{args['url']}/api/dls/file?file-uri={args['uri']}"
    t = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", args["path"], "-H",
                    f"x-api-key: {args['api_key']}", "-H", f"x-dls-key: {args['dls_key']}",
                    url], check=True)
    return {"seconds": time.perf_counter() - t}


def child_cp(args: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    subprocess.run(["cp", args["src"], args["dst"]], check=True)
    return {"seconds": time.perf_counter() - t}


def run_child(step: str, **args: Any) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", step, json.dumps(args)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child_main(step: str, raw: str) -> None:
    result = globals()[f"child_{step}"](json.loads(raw))
    result["rss_mb"] = vmhwm_mb()
    print(json.dumps(result), flush=True)


# -- set-up -----------------------------------------------------------------------------------
def cli(*args: str, db: str) -> str:
    cmd = [sys.executable, "-m", "pyconnector_server.cli", *args]
    if db:
        cmd += ["--db", db]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def make_blob(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    rnd = random.Random(7)
    block = rnd.randbytes(1 << 20)  # incompressible, repeated: cheap to make
    with open(path, "wb") as fh:
        for _ in range(size >> 20):
            fh.write(block)


def make_csv(path: Path, rows: int) -> None:
    if path.exists():
        return
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "time": pd.date_range("2024-01-01", periods=rows, freq="s").strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "sensor": rng.choice([f"s{i}" for i in range(50)], rows),
        "temperature": rng.normal(25, 3, rows).round(3),
        "humidity": rng.integers(20, 90, rows),
        "status": rng.choice(["ok", "warn", "fail"], rows),
    })
    frame.to_csv(path, index=False)


def bulk_catalog(db_url: str, tenant: str, user: str, files: int) -> None:
    """Insert ``files`` catalog rows (and 3 metadata rows each) in bulk into the store."""
    import sqlalchemy as sa

    from pyconnector_server.datalake.tables import file, meta
    from pyconnector_server.datalake.tables import user as dls_user
    from pyconnector_server.db import Database
    from pyconnector_server.db import tenant as tenant_table

    db = Database(db_url)
    rnd = random.Random(11)
    with db.write() as conn:
        tid = conn.execute(sa.select(tenant_table.c.id).where(
            tenant_table.c.name == tenant)).scalar_one()
        uid = conn.execute(sa.select(dls_user.c.id).where(
            dls_user.c.tenant_id == tid, dls_user.c.name == user)).scalar_one()
        now = int(time.time() * 1000)
        rows, metas = [], []
        for i in range(files):
            d = f"site{i % 100}/{i % 7}"
            name = f"file{i:06d}.csv"
            rows.append({"tenant_id": tid, "owner_id": uid, "path": f"{d}/{name}",
                         "directory": d, "savepoint": "", "filename": name,
                         "size": rnd.randrange(1, 10 << 20), "content_type": "text/csv",
                         "comment": "", "blob_key": f"t{tid}/bench{i:06d}",
                         "created_ms": now - i * 1000, "updated_ms": now - i * 1000,
                         "updated_by": uid})
        conn.execute(sa.insert(file), rows)
        ids = conn.execute(sa.select(file.c.id).where(
            file.c.owner_id == uid, file.c.blob_key.startswith(f"t{tid}/bench"))
            .order_by(file.c.id)).scalars().all()
        for fid in ids:
            rate = rnd.randrange(100)
            metas += [{"file_id": fid, "key": "site", "value": rnd.choice(SITES), "num": None},
                      {"file_id": fid, "key": "rate", "value": str(rate), "num": float(rate)},
                      {"file_id": fid, "key": "dls:lineage", "value": "CREATED", "num": None}]
        conn.execute(sa.insert(meta), metas)
    db.close()


def median(values: list[float]) -> float:
    return statistics.median(values)


# -- the benchmarks ---------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", default="")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--parts", default="transfer,catalog,dataframe",
                    help="which benchmarks to run (comma-separated)")
    opts = ap.parse_args()
    parts = set(opts.parts.split(","))

    from pyconnector_server.process import ServerProcess

    DATA.mkdir(parents=True, exist_ok=True)
    work = DATA / f"dls-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    data_dir = work / "platform"
    size = opts.size_mib << 20
    src = DATA / f"blob-{opts.size_mib}MiB.bin"
    csv_path = DATA / f"rows-{opts.rows}.csv"
    print(f"preparing {src.name} and {csv_path.name} …", flush=True)
    make_blob(src, size)
    make_csv(csv_path, opts.rows)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                   f"{platform.python_implementation()} {platform.python_version()}, "
                   f"store {'PostgreSQL' if opts.db else 'SQLite'}, blobs local disk"}

    srv = ServerProcess.start(data_dir, opts.db)
    try:
        tenant = f"bench-{uuid.uuid4().hex[:6]}"
        api_key = cli("apikey", "create", "--data-dir", str(data_dir), "--tenant", tenant,
                      db=opts.db)
        dls_key = cli("dlsuser", "create", "--data-dir", str(data_dir), "--tenant", tenant,
                      "--user", "bench", db=opts.db)
        auth = {"url": srv.url, "api_key": api_key, "dls_key": dls_key}
        results["server_idle_rss_mb"] = round(vmhwm_mb(srv.proc.pid))

        if "transfer" in parts:
            transfer(opts, work, src, size, auth, tenant, srv, results)
        if "catalog" in parts:
            catalog(opts, data_dir, tenant, auth, results)
        if "dataframe" in parts:
            dataframe(opts, csv_path, auth, tenant, results)
        results["server_peak_rss_mb_end"] = round(vmhwm_mb(srv.proc.pid))
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


def transfer(opts: Any, work: Path, src: Path, size: int, auth: dict[str, str], tenant: str,
             srv: Any, results: dict[str, Any]) -> None:
    """1 GiB up and down through the connector, each against cp on the same disk; the
    download also with curl (to a file, and to /dev/null), all in the same run."""
    steps = ("upload", "cp_up", "download", "cp_down", "curl", "curl_null")
    secs: dict[str, list[float]] = {k: [] for k in steps}
    client_rss = []
    uri = f"{tenant}/bench/big.bin"
    dst, back = work / "cp-copy.bin", work / "download.bin"
    for run in range(opts.runs):
        subprocess.run(["sync"], check=True)
        secs["cp_up"].append(run_child("cp", src=str(src), dst=str(dst))["seconds"])
        dst.unlink()
        subprocess.run(["sync"], check=True)
        r = run_child("upload", **auth, path=str(src), name="big.bin")
        assert r["size"] == size
        secs["upload"].append(r["seconds"])
        client_rss.append(r["rss_mb"])
        subprocess.run(["sync"], check=True)
        secs["cp_down"].append(run_child("cp", src=str(src), dst=str(dst))["seconds"])
        dst.unlink()
        subprocess.run(["sync"], check=True)
        r = run_child("download", **auth, uri=uri, path=str(back))
        secs["download"].append(r["seconds"])
        client_rss.append(r["rss_mb"])
        if run == 0:
            assert subprocess.run(["cmp", "-s", str(src), str(back)]).returncode == 0
        back.unlink()
        subprocess.run(["sync"], check=True)
        secs["curl"].append(run_child("curl", **auth, uri=uri, path=str(back))["seconds"])
        if run == 0:
            assert subprocess.run(["cmp", "-s", str(src), str(back)]).returncode == 0
        back.unlink()
        subprocess.run(["sync"], check=True)
        secs["curl_null"].append(
            run_child("curl", **auth, uri=uri, path="/dev/null")["seconds"])
        rate = {k: size / MB / v[-1] for k, v in secs.items()}
        print(f"run {run + 1}: upload {rate['upload']:.0f} MB/s, cp {rate['cp_up']:.0f} MB/s; "
              f"download {rate['download']:.0f} MB/s, curl {rate['curl']:.0f} MB/s, cp "
              f"{rate['cp_down']:.0f} MB/s; curl to /dev/null {rate['curl_null']:.0f} MB/s",
              flush=True)
    mbps = {k: size / MB / median(v) for k, v in secs.items()}
    results["transfer"] = {
        "size_mib": opts.size_mib, "runs": opts.runs,
        "mb_s_runs": {k: [round(size / MB / x) for x in v] for k, v in secs.items()},
        "upload_mb_s": round(mbps["upload"]), "cp_mb_s_upload_run": round(mbps["cp_up"]),
        "upload_ratio": round(mbps["upload"] / mbps["cp_up"], 2),
        "download_mb_s": round(mbps["download"]),
        "curl_mb_s": round(mbps["curl"]),
        "curl_to_null_mb_s": round(mbps["curl_null"]),
        "cp_mb_s_download_run": round(mbps["cp_down"]),
        "download_ratio": round(mbps["download"] / mbps["cp_down"], 2),
        "curl_ratio": round(mbps["curl"] / mbps["cp_down"], 2),
        "client_peak_rss_mb": round(max(client_rss)),
        "server_peak_rss_mb": round(vmhwm_mb(srv.proc.pid))}
    print(json.dumps(results["transfer"]), flush=True)


def catalog(opts: Any, data_dir: Path, tenant: str, auth: dict[str, str],
            results: dict[str, Any]) -> None:
    """Search by metadata expressions over ``opts.files`` catalog rows."""
    t = time.perf_counter()
    bulk_catalog(opts.db or f"sqlite:///{data_dir / 'pyconnector.db'}", tenant, "bench",
                 opts.files)
    insert_s = time.perf_counter() - t
    searches = {}
    for expr in ("site='pune' & rate>=50", "site='goa', rate<5", "rate=42"):
        times: list[float] = []
        for _ in range(opts.runs):
            r = run_child("search", **auth, expr=expr, repeat=20)
            times += r["times"]
        times.sort()
        searches[expr] = {"matches": r["count"], "returned": r["returned"],
                          "p50_ms": round(median(times) * 1000, 1),
                          "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000, 1)}
    results["catalog"] = {"files": opts.files, "bulk_insert_s": round(insert_s, 1),
                          "searches": searches}
    print(json.dumps(results["catalog"]), flush=True)


def dataframe(opts: Any, csv_path: Path, auth: dict[str, str], tenant: str,
              results: dict[str, Any]) -> None:
    """getFile(..., 'dataframe') against pandas.read_csv of the local file."""
    run_child("upload", **auth, path=str(csv_path), name="rows.csv")
    csv_uri = f"{tenant}/bench/rows.csv"
    ours: dict[str, list[float]] = {"cold": [], "warm": []}
    theirs: dict[str, list[float]] = {"cold": [], "warm": []}
    for _ in range(opts.runs):
        r = run_child("dataframe", how="pandas", path=str(csv_path))
        for k in theirs:
            theirs[k].append(r[k])
        r = run_child("dataframe", how="connector", uri=csv_uri, **auth)
        assert r["rows"] == opts.rows
        for k in ours:
            ours[k].append(r[k])
    results["dataframe"] = {"rows": opts.rows, "csv_mb": round(csv_path.stat().st_size / MB, 1)}
    for k in ("warm", "cold"):
        results["dataframe"].update({
            f"getFile_{k}_s": round(median(ours[k]), 3),
            f"read_csv_{k}_s": round(median(theirs[k]), 3),
            f"ratio_{k}": round(median(ours[k]) / median(theirs[k]), 2)})
    print(json.dumps(results["dataframe"]), flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())

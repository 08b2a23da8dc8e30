"""Workflow Service benchmarks against a running platform:
``.venv/bin/python benchmarks/workflow.py [--runs N] [--quick]``.

A real ``pyconnector serve`` (SQLite, or ``--db postgresql`` on a fresh schema) with the
local executor at ``--concurrency`` jobs at once (default: the number of CPUs). Every
task is the same trivial ``py`` program: its first line takes ``time.time()`` (the moment
its process runs Python code) and its last takes it again just before ``os._exit(0)``
(the moment it exits). Everything runs on one machine: one clock.

1. **Inter-step latency** (ms, p50 and max over the 19 hand-overs of a 20-step chain
   ``t0 → t1 → … → t19``): from a step's exit (its last line) to its downstream step's
   first line. That is the platform noticing the exit, the engine ending the step,
   claiming the next one and starting its run (bundle, executor), plus the interpreter's
   own start-up; the baseline, interleaved in the same run, is that start-up alone:
   ``python -c 'import time; print(time.time())'`` spawned by ``subprocess`` from here,
   with the interpreter the platform runs tasks with. Goal (issue 10): p50 < 200 ms.
   On SQLite the hand-over is also split by the database's timestamps (the run's
   ``ended_ms``, the step's ``claimed_ms``, the next run's ``queued_ms`` and
   ``started_ms``): the runner's share, the engine's, the executor's and the
   interpreter's (p50 of each part).
2. **Fan-out/fan-in** (``--width`` tasks, default 100): one task, then ``width - 2`` in
   parallel, then one; the instance's wall time from ``initiate`` to its ``endedOn``. The
   same tasks' runs alone, in the same run: the same program spawned level by level by
   ``subprocess`` at the executor's concurrency (raw spawns), and on a
   :class:`LocalExecutor` in this process (no HTTP, database or engine). Engine overhead
   per task = (wall time - raw spawns' wall time) / tasks. Goal (issue 10): < 50 ms;
   the per-task difference to the executor alone is shown as well.

An instance is prepared (``preInitiate``: a copy of every task and its deploy) before the
clock starts; preparing is timed on its own. Options: ``--runs N`` (default 3; medians
of the per-run figures), ``--quick`` (one run). The machine is shared: compare ratios and
differences, not absolutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Metric, log, target  # noqa: E402
from task_dispatch import executor_alone, raw_spawn, row  # noqa: E402

import pyconnector  # noqa: E402
from pyconnector.times import parse_time  # noqa: E402
from pyconnector_server.process import ServerProcess  # noqa: E402

# First line: the process runs Python code; last line: it is about to exit.
PROGRAM = """import time; t = time.time()
import os, sys
print(repr(t))
print(sys.executable)
print(repr(time.time()), flush=True)
os._exit(0)
"""
WF = "/WorkflowService/v1.0"
TS = "/TaskService/v1.0"
ENDED = ("SUCCEEDED", "FAILED", "ABORTED")


def deploy(conn: Any, project: str, names: list[str], program: Path) -> list[Any]:
    """A deployed task per name in ``project``."""
    tasks = []
    for name in names:
        task = conn.Task(projectName=project, jobName=name)
        task.deployTask(program, "py")
        tasks.append(task)
    return tasks


def define(conn: Any, name: str, edges: list[tuple[str, str]]) -> None:
    conn.http.request("POST", f"{WF}/definitions", json={
        "processName": name, "processVersion": "v1",
        "links": [{"source": a, "destination": b} for a, b in edges]})


def run_instance(conn: Any, name: str, timeout: float = 600) -> dict[str, Any]:
    """Prepare (timed), initiate and wait for an instance of ``name``: its final view
    with ``prepare_s``, ``called`` (when initiate was sent) and ``ended`` (its
    ``endedOn``), epoch seconds."""
    t0 = time.time()
    inst = conn.http.request("POST", f"{WF}/definitions/{name}/v1/instances")
    prepared = time.time() - t0
    iid = inst["instanceId"]
    called = time.time()
    conn.http.request("POST", f"{WF}/instances/{iid}/initiate")
    deadline = time.monotonic() + timeout
    while True:
        view = conn.http.request("GET", f"{WF}/instances/{iid}")
        if view["state"] in ENDED:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"instance {iid} not ended after {timeout:g} s: {view}")
        time.sleep(0.05)
    if view["state"] != "SUCCEEDED":
        failed = [s for s in view["tasks"] if s["state"] != "SUCCEEDED"][:5]
        raise RuntimeError(f"instance {iid}: {view['state']}: {failed}")
    return {**view, "prepare_s": prepared, "called": called,
            "ended": parse_time(view["endedOn"]) / 1000}


def times_of(conn: Any, project: str, copy: str) -> tuple[float, float, str]:
    """(first line, exit, interpreter) of a copied task's first run."""
    text = conn.http.get_bytes(f"{TS}/projects/{project}/tasks/{copy}/runs/1/log").decode()
    first, python, last = text.split()
    return float(first), float(last), python


# -- 1. inter-step latency ---------------------------------------------------------------------
PARTS = ("exit → the run's end written (runner: exit noticed, outputs, run row)",
         "→ next step claimed (engine: woken, steps read, step ended, claim)",
         "→ next run queued (runner: task row, run row)",
         "→ its process started (executor: working directory, bundle, fork)",
         "→ its first line (the interpreter's start-up)")


def breakdown(sqlite_path: Path, iid: int, bases: list[str],
              marks: list[tuple[float, float, str]]) -> list[list[float]]:
    """Each hand-over split by the database's timestamps, ms: one list per part of
    :data:`PARTS`."""
    db = sqlite3.connect(sqlite_path)
    try:
        rows = {f"T{r[0]}": r[1:] for r in db.execute(
            "SELECT s.base_task_id, s.claimed_ms, r.queued_ms, r.started_ms, r.ended_ms "
            "FROM workflow_step s JOIN task_run r ON r.task_id = s.task_id "
            "AND r.number = s.run_number WHERE s.instance_id = ?", (iid,))}
    finally:
        db.close()
    parts: list[list[float]] = [[] for _ in PARTS]
    for i in range(len(bases) - 1):
        up, down = rows[bases[i]], rows[bases[i + 1]]
        exit_ms, first_ms = marks[i][1] * 1000, marks[i + 1][0] * 1000
        for k, v in enumerate((up[3] - exit_ms, down[0] - up[3], down[1] - down[0],
                               down[2] - down[1], first_ms - down[2])):
            parts[k].append(v)
    return parts


def chain_round(conn: Any, project: str, bases: list[str], python: str,
                cwd: Path, sqlite_path: Path | None) -> dict[str, Any]:
    view = run_instance(conn, "chain")
    copy = {s["baseTaskId"]: s["copiedTaskId"] for s in view["tasks"]}
    marks = [times_of(conn, project, copy[b]) for b in bases]
    gaps = [marks[i + 1][0] - marks[i][1] for i in range(len(marks) - 1)]
    raw = [raw_spawn(python, cwd) for _ in gaps]
    parts = breakdown(sqlite_path, int(view["instanceId"][1:]), bases, marks) \
        if sqlite_path is not None else []
    return {"gaps": gaps, "raw": raw, "prepare_s": view["prepare_s"], "parts": parts}


# -- 2. fan-out/fan-in -------------------------------------------------------------------------
def raw_levels(python: str, program: Path, levels: list[int], concurrency: int,
               cwd: Path) -> float:
    """Seconds to spawn ``python program`` level by level (each level's spawns
    ``concurrency`` at a time, the next level once they have all exited)."""
    def one(_: int) -> None:
        subprocess.run([python, str(program)], capture_output=True, cwd=cwd, check=True)

    start = time.time()
    with ThreadPoolExecutor(concurrency) as pool:
        for n in levels:
            list(pool.map(one, range(n)))
    return time.time() - start


def fan_round(conn: Any, python: str, program: Path, width: int, concurrency: int,
              cwd: Path) -> dict[str, float]:
    view = run_instance(conn, "fan")
    levels = [1, width - 2, 1]
    raw = raw_levels(python, program, levels, concurrency, cwd)
    alone = sum(n / executor_alone(python, program, n, concurrency)["rate"]
                for n in levels)
    return {"wall": view["ended"] - view["called"], "raw": raw, "alone": alone,
            "prepare_s": view["prepare_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one run")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--steps", type=int, default=20, help="steps of the chain")
    ap.add_argument("--width", type=int, default=100, help="tasks of the fan-out/fan-in")
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                    help="the executor's jobs at once (local://?concurrency=N)")
    a = ap.parse_args()
    if a.quick:
        a.runs = 1

    gap_p50 = Metric(a.db, "inter-step p50", "ms", base_name="raw spawn",
                     higher_is_better=False, goal="value < 200")
    gap_max = Metric(a.db, "inter-step max", "ms", base_name="raw spawn",
                     higher_is_better=False)
    overhead = Metric(a.db, "engine overhead per task", "ms", base_name="raw spawns",
                      higher_is_better=False, goal="value < 50")
    over_alone = Metric(a.db, "overhead per task over the executor alone", "ms",
                        higher_is_better=False)
    wall = Metric(a.db, "fan-out/fan-in wall", "s", base_name="raw spawns",
                  higher_is_better=False)
    prep_chain = Metric(a.db, "prepare, chain", "s", higher_is_better=False)
    prep_fan = Metric(a.db, "prepare, fan", "s", higher_is_better=False)
    parts: list[list[float]] = [[] for _ in PARTS]
    work = Path(tempfile.mkdtemp(prefix="pyc-bench-wf-"))
    task_dir = Path(tempfile.gettempdir()) / f"pyc-bench-wf-taskdir-{uuid.uuid4().hex[:8]}"
    program = work / "marks.py"
    program.write_text(PROGRAM)
    executor_url = f"local://?concurrency={a.concurrency}"
    try:
        with target(a.db, "workflow") as (data_dir, db), ServerProcess.start(
                data_dir, db, "--executor", executor_url,
                "--task-dir", str(task_dir), timeout=90) as server:
            conn = pyconnector.connectors(api_key=server.api_key, URL=server.url)
            log(f"platform {server.url}, db {a.db}, executor concurrency {a.concurrency}; "
                f"deploying {a.steps} + {a.width} tasks")
            chain = deploy(conn, "bench-chain", [f"s{i:02d}" for i in range(a.steps)],
                           program)
            project = chain[0].projectId
            warm = chain[0]
            warm.waitForRun(warm.startTask()["run"])  # warm-up, not counted
            python = warm.getLog().split()[1]
            ids = [t.jobId for t in chain]
            define(conn, "chain", list(zip(ids, ids[1:])))
            fan = deploy(conn, "bench-fan", [f"f{i:03d}" for i in range(a.width)], program)
            head, middle, tail = fan[0].jobId, [t.jobId for t in fan[1:-1]], fan[-1].jobId
            define(conn, "fan", [(head, m) for m in middle] + [(m, tail) for m in middle])
            log(f"tasks run with {python}")

            for run in range(a.runs):
                log(f"run {run + 1}/{a.runs}: a chain of {a.steps} steps")
                c = chain_round(conn, project, ids, python, work,
                                data_dir / "pyconnector.db" if a.db == "sqlite" else None)
                for mine, got in zip(parts, c["parts"]):
                    mine.extend(got)
                gap_p50.ours.append(statistics.median(c["gaps"]) * 1000)
                gap_p50.base.append(statistics.median(c["raw"]) * 1000)
                gap_max.ours.append(max(c["gaps"]) * 1000)
                gap_max.base.append(max(c["raw"]) * 1000)
                prep_chain.ours.append(c["prepare_s"])
                log(f"  gaps ms: {', '.join(f'{g * 1000:.0f}' for g in c['gaps'])}")

                log(f"run {run + 1}/{a.runs}: fan-out/fan-in of {a.width} tasks")
                f = fan_round(conn, python, program, a.width, a.concurrency, work)
                wall.ours.append(f["wall"])
                wall.base.append(f["raw"])
                overhead.ours.append((f["wall"] - f["raw"]) / a.width * 1000)
                over_alone.ours.append((f["wall"] - f["alone"]) / a.width * 1000)
                prep_fan.ours.append(f["prepare_s"])
                log(f"  wall {f['wall']:.2f} s, raw spawns {f['raw']:.2f} s, executor alone "
                    f"{f['alone']:.2f} s, prepared in {f['prepare_s']:.2f} s")
            conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(task_dir, ignore_errors=True)

    load = os.getloadavg()
    print(f"\n{a.db}, executor {executor_url}, tasks run with {python}; medians of "
          f"{a.runs} run(s); load average now {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    print("| What | Ours, median (runs) | Baseline, same run | Difference | Ratio | Goal | "
          "Met? |")
    print("|---|---|---|---|---|---|---|")
    rows = [
        row(f"inter-step latency p50, ms (exit → next step's first line; {a.steps}-step "
            "chain)", gap_p50),
        row("inter-step latency max, ms", gap_max),
        row(f"fan-out/fan-in wall time, s (1 → {a.width - 2} → 1 tasks, initiate → "
            "endedOn)", wall),
        row("engine overhead per task, ms ((wall - raw spawns) / tasks)", overhead),
        row("overhead per task over the executor alone, ms", over_alone),
        row(f"prepare an instance, s ({a.steps} tasks)", prep_chain),
        row(f"prepare an instance, s ({a.width} tasks)", prep_fan),
    ]
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if parts[0]:
        print(f"\nA hand-over, p50 of each part over {len(parts[0])} hand-overs (ms):")
        for name, values in zip(PARTS, parts):
            print(f"  {statistics.median(values):6.1f}  {name}")


if __name__ == "__main__":
    main()

"""Task Service benchmarks against a running platform:
``.venv/bin/python benchmarks/task_dispatch.py [--accuracy]``.

A real ``pyconnector serve`` (SQLite, or ``--db postgresql`` on a fresh schema) with the
local executor at ``--concurrency`` jobs at once (default: the number of CPUs, the
executor's own default). Every task is the same trivial ``py`` program whose first line
takes ``time.time()``: the moment its process runs Python code. Everything here runs on
one machine, so the benchmark's clock and the task's are the same clock.

1. **Dispatch latency** (ms, p50 and p99 over ``--latency-runs``): from ``startTask()``
   returning to the task's first line, one run at a time. The process start includes the
   interpreter's own start-up, so the baseline, interleaved with it in the same run, is
   that alone: ``python -c 'import time; print(time.time())'`` spawned by ``subprocess``
   from here, with the interpreter the platform runs tasks with (which the task reports:
   ``/usr/bin/python3`` when the platform is root and runs tasks as ``nobody``).
   Goal (issue 9): p50 < 100 ms.
2. **Throughput** (tasks/s): ``--tasks`` separate tasks of one project, deployed before the
   clock starts, started by ``--clients`` client threads as fast as they can; timed from
   the first start to the last run's end (``endedOn``); every run is then checked: none
   lost means every one succeeded. Baseline: as many raw ``subprocess`` spawns of the same
   program, ``--concurrency`` at a time; and, to tell the executor's share from the
   service's, the same jobs on a ``LocalExecutor`` in this process (no HTTP, database or
   bundle copies).
3. **Scheduler accuracy**: ``--delayed`` delayed tasks all due at the same whole second,
   from that second to each process's first line; with ``--accuracy``, also a recurrent
   task (``cron: * * * * *``, recurrenceLimit 2, about two minutes), from each run's slot
   to its first line. Goal: within 1 s.

``--executor celery`` runs the same on the celery executor: a ``pyconnector worker``
started here (``--concurrency`` jobs at once) on a queue of its own on the RabbitMQ at
127.0.0.1:5672; the platform hands out up to its default 32 at once. Goal (issue 9):
dispatch p50 < 300 ms. The executor-alone row is the local executor's only.

Options: ``--runs N`` (default 3; medians of the per-run figures), ``--quick`` (one run,
fewer tasks). The machine is shared: compare ratios and differences, not absolutes.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
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

from common import Metric, fmt, log, target  # noqa: E402

import pyconnector  # noqa: E402
from pyconnector.times import parse_time  # noqa: E402
from pyconnector_server.process import ServerProcess  # noqa: E402

# The task: its first line is the moment its process runs Python code.
PROGRAM = """import time; t = time.time()
import sys
print(repr(t))
print(sys.executable)
"""
RAW_SPAWN = "import time; print(repr(time.time()))"
ENDED_STATUS = ("COMPLETED", "FAILED", "STOPPED")
ENDED_RUN = ("succeeded", "failed", "stopped", "timed_out", "out_of_memory", "cpu_limit",
             "lost")


def quantile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (``statistics.quantiles``, exclusive method)."""
    return statistics.quantiles(values, n=100)[q - 1]


def first_line_time(task: Any, run: int) -> float:
    """The ``time.time()`` a run's process took at its first line."""
    return float(task.getLog(run).split()[0])


def wait_run(task: Any, number: int, timeout: float = 120) -> dict[str, Any]:
    """Wait until run ``number`` of ``task`` exists and has ended (``waitForRun`` wants it
    to exist already; a scheduled run is made by the scheduler)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = task.getRuns()
        if len(runs) >= number and runs[number - 1]["state"] in ENDED_RUN:
            return dict(runs[number - 1])
        time.sleep(0.2)
    raise RuntimeError(f"run {number} of {task.jobId} not ended after {timeout:g} s")


# -- 1. dispatch latency -----------------------------------------------------------------------
def raw_spawn(python: str, cwd: Path) -> float:
    """Seconds from ``subprocess`` being asked to spawn the interpreter to its first line."""
    t0 = time.time()
    out = subprocess.run([python, "-c", RAW_SPAWN], capture_output=True, text=True,
                         check=True, cwd=cwd).stdout
    return float(out.split()[0]) - t0


def latency_round(task: Any, python: str, n: int, cwd: Path) -> dict[str, list[float]]:
    """``n`` runs of ``task``, one at a time, each followed by a raw spawn (interleaved, so
    both see the same load)."""
    out: dict[str, list[float]] = {"returned": [], "called": [], "raw": []}
    for _ in range(n):
        called = time.time()
        number = task.startTask()["run"]
        returned = time.time()
        run = task.waitForRun(number, timeout=60)
        if run["state"] != "succeeded":
            raise RuntimeError(f"latency run {number}: {run['state']} ({run['reason']})")
        started = first_line_time(task, number)
        out["returned"].append(started - returned)
        out["called"].append(started - called)
        out["raw"].append(raw_spawn(python, cwd))
    return out


# -- 2. throughput -----------------------------------------------------------------------------
def deploy_many(url: str, key: str, project: str, n: int, program: Path,
                clients: int) -> list[list[Any]]:
    """``n`` tasks ``t0000``… in ``project``, each deployed with ``program``: one list of
    them per client thread, each list on a connector of its own."""
    pyconnector.connectors(api_key=key, URL=url).Task(  # the project, made once
        projectName=project, jobName="t0000")

    def deploy(k: int) -> list[Any]:
        conn = pyconnector.connectors(api_key=key, URL=url)
        tasks = [conn.Task(projectName=project, jobName=f"t{i:04d}")
                 for i in range(k, n, clients)]
        for task in tasks:
            task.deployTask(program, "py")
        return tasks

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(deploy, range(clients)))


def throughput_round(clients: list[list[Any]], expected_run: int) -> dict[str, Any]:
    """Start every task at once, each client thread its own tasks one after the other;
    tasks/s from the first start to the last run's end."""
    tasks = [t for mine in clients for t in mine]
    everyone = {t.jobId: t for t in tasks}

    def run_of(task: Any) -> dict[str, Any]:
        return dict(task.http.request("GET", task._path(None, "runs", str(expected_run))))

    def runs_of(mine: list[Any]) -> list[dict[str, Any]]:
        return [run_of(t) for t in mine]

    with ThreadPoolExecutor(len(clients)) as pool:
        first = time.time()
        numbers = list(pool.map(lambda mine: [(t.jobId, t.startTask()["run"]) for t in mine],
                                clients))
        all_started = time.time()
        wrong = [(j, n) for mine in numbers for j, n in mine if n != expected_run]
        # Done when every task's status says so; the last few are asked by their run, in
        # case a status lags behind its run.
        lister = tasks[0]
        deadline = time.monotonic() + 600
        pending = [t.jobId for t in tasks]
        while pending and time.monotonic() < deadline:
            time.sleep(1.0)
            status = {t["jobId"]: t["status"] for t in lister.getTasks()}
            pending = [j for j in pending if status.get(j) not in ENDED_STATUS]
            if 0 < len(pending) <= 20:
                pending = [j for j in pending
                           if run_of(everyone[j])["state"] not in ENDED_RUN]
        status = {t["jobId"]: t["status"] for t in lister.getTasks()}
        runs = [r for mine in pool.map(runs_of, clients) for r in mine]  # none lost?
        ids = [t.jobId for mine in clients for t in mine]
    ended = [parse_time(r["endedOn"]) / 1000 for r in runs if r["endedOn"]]
    succeeded = sum(r["state"] == "succeeded" for r in runs)
    lagging = [(j, status.get(j)) for j, r in zip(ids, runs)
               if r["state"] == "succeeded" and status.get(j) != "COMPLETED"]
    if lagging:  # late, or left so for good? Ask again once everything has settled.
        time.sleep(3.0)
        status = {t["jobId"]: t["status"] for t in lister.getTasks()}
        lagging = [(j, status.get(j)) for j, _ in lagging if status.get(j) != "COMPLETED"]
    return {"rate": len(tasks) / (max(ended) - first), "succeeded": succeeded,
            "start_rate": len(tasks) / (all_started - first), "wrong_numbers": wrong,
            "states": sorted({r["state"] for r in runs}), "pending": pending,
            "lagging_status": lagging}


def raw_throughput(python: str, program: Path, n: int, concurrency: int,
                   cwd: Path) -> dict[str, float]:
    """``n`` spawns of ``python program``, ``concurrency`` at a time: spawns/s."""
    def one(_: int) -> bool:
        proc = subprocess.run([python, str(program)], capture_output=True, cwd=cwd)
        return proc.returncode == 0 and bool(proc.stdout)

    start = time.time()
    with ThreadPoolExecutor(concurrency) as pool:
        ok = sum(pool.map(one, range(n)))
    return {"rate": n / (time.time() - start), "succeeded": ok}


def executor_alone(python: str, program: Path, n: int, concurrency: int) -> dict[str, float]:
    """``n`` jobs of ``program`` on a :class:`LocalExecutor` in this process, no service
    around it (no HTTP, database, bundle copies or outputs): jobs/s. What is between the
    raw spawns and the platform's figure: the executor's own costs (fork with a set-up
    function rather than vfork, limits, the account switch and hand-over, the watchdog)."""
    import asyncio

    from pyconnector_server.backends.executor import Job, Limits
    from pyconnector_server.backends.executor.local import LocalExecutor

    root = Path(tempfile.mkdtemp(prefix="pyc-bench-executor-"))
    os.chmod(root, 0o711)  # the task account must reach its working directory
    try:
        jobs = []
        for i in range(n):
            work = root / f"j{i}"
            work.mkdir()
            shutil.copy(program, work / program.name)
            jobs.append(Job(run_id=f"bench-{i}", workdir=work,
                            command=(python, program.name),
                            stdout=root / f"{i}.out", stderr=root / f"{i}.err",
                            limits=Limits(wall_seconds=60)))

        async def go() -> tuple[float, int]:
            executor = LocalExecutor(concurrency)
            start = time.time()
            executions = [await executor.submit(job) for job in jobs]
            outcomes = [await e.wait() for e in executions]
            seconds = time.time() - start
            await executor.close()
            return seconds, sum(o.ending == "succeeded" for o in outcomes)

        try:  # the platform's loop (pyconnector serve runs on uvloop when installed)
            import uvloop

            factory: Any = uvloop.new_event_loop
        except ImportError:
            factory = None
        with asyncio.Runner(loop_factory=factory) as runner:
            seconds, ok = runner.run(go())
        return {"rate": n / seconds, "succeeded": ok}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def start_worker(executor_url: str, concurrency: int, log_path: Path) -> subprocess.Popen[str]:
    """A ``pyconnector worker`` for ``executor_url``, once Celery says it is ready."""
    out = open(log_path, "w+")
    proc = subprocess.Popen([sys.executable, "-m", "pyconnector_server.cli", "worker",
                             "--executor", executor_url, "--concurrency", str(concurrency)],
                            stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while " ready." not in log_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"pyconnector worker did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    return proc


# -- 3. scheduler accuracy ---------------------------------------------------------------------
def delayed_round(tasks: list[Any], expected_run: int, lead: float) -> list[float]:
    """Reschedule every task to the same whole second; seconds from it to each first line."""
    due = math.ceil(time.time() + lead)
    for task in tasks:
        task.rescheduleTask(due * 1000)
    delays = []
    for task in tasks:
        run = wait_run(task, expected_run, timeout=lead + 120)
        if run["state"] != "succeeded":
            raise RuntimeError(f"delayed {task.jobId}: {run['state']} ({run['reason']})")
        if parse_time(run["slot"]) != due * 1000:
            raise RuntimeError(f"delayed {task.jobId}: slot {run['slot']}, due {due}")
        delays.append(first_line_time(task, expected_run) - due)
    return delays


def wrong_status(tasks: list[Any]) -> list[tuple[str, str]]:
    """The tasks whose every run has ended but whose status is not COMPLETED (after a
    moment for the platform to settle)."""
    time.sleep(3.0)
    return [(t.jobId, s) for t in tasks if (s := t.getStatus()["status"]) != "COMPLETED"]


def recurrent(conn: Any, program: Path) -> list[dict[str, float]]:
    """A task on ``* * * * *`` with recurrenceLimit 2: per run, slot → first line and
    slot → the executor's start (``startedOn``)."""
    task = conn.RecurrentTask("cron", cron="* * * * *", recurrenceLimit=2,
                              projectName="bench-schedule", jobName="every-minute")
    task.deployTask(program, "py")
    out = []
    for number in (1, 2):
        run = wait_run(task, number, timeout=200)
        slot = parse_time(run["slot"]) / 1000
        out.append({"first_line": first_line_time(task, number) - slot,
                    "started": parse_time(run["startedOn"]) / 1000 - slot,
                    "state_ok": float(run["state"] == "succeeded")})
    return out


# -- the run -----------------------------------------------------------------------------------
def row(what: str, m: Metric, unit_scale: float = 1.0) -> list[str]:
    med, base = m.median, m.base_median
    diff = None if med is None or base is None else med - base
    met = m.met()
    return [what, f"**{fmt(med)}** ({' / '.join(fmt(x) for x in m.ours)})",
            f"{m.base_name} {fmt(base)}" if m.base else "-",
            "-" if diff is None else f"{diff:+.1f}" if abs(diff) < 100 else f"{diff:+,.0f}",
            fmt(m.ratio), m.goal.replace("value ", "") or "-",
            "-" if met is None else ("met" if met else "**NOT MET**")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="one run: 50 latency runs, 200 tasks, 10 delayed")
    ap.add_argument("--accuracy", action="store_true",
                    help="also the recurrent task on * * * * * (about 2 minutes)")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--executor", choices=["local", "celery"], default="local")
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--delayed", type=int, default=20)
    ap.add_argument("--clients", type=int, default=8, help="client threads that start tasks")
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                    help="the executor's jobs at once (local://?concurrency=N)")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.latency_runs, a.tasks, a.delayed = 1, 50, 200, 10

    lat_p50 = Metric(a.db, "dispatch p50", "ms", base_name="raw spawn",
                     higher_is_better=False,
                     goal="value < 300" if a.executor == "celery" else "value < 100")
    lat_p99 = Metric(a.db, "dispatch p99", "ms", base_name="raw spawn", higher_is_better=False)
    called_p50 = Metric(a.db, "call → first line p50", "ms", base_name="raw spawn",
                        higher_is_better=False)
    thr = Metric(a.db, "throughput", "tasks/s", base_name="raw spawns")
    starts = Metric(a.db, "startTask calls", "/s")
    alone = Metric(a.db, "executor alone", "jobs/s", base_name="raw spawns")
    delayed_p50 = Metric(a.db, "delayed p50", "ms", base_name="raw spawn",
                         higher_is_better=False, goal="value < 1000")
    delayed_max = Metric(a.db, "delayed max", "ms", base_name="raw spawn",
                         higher_is_better=False, goal="value < 1000")
    problems: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="pyc-bench-tasks-"))
    task_dir = Path(tempfile.gettempdir()) / f"pyc-bench-taskdir-{uuid.uuid4().hex[:8]}"
    program = work / "first_line.py"
    program.write_text(PROGRAM)
    executor_url = f"local://?concurrency={a.concurrency}"
    worker = None
    if a.executor == "celery":
        # the platform's default hand-out (32): runs wait in the queue, not on the platform
        executor_url = f"celery://?queue=pyc-bench-{uuid.uuid4().hex[:8]}"
        worker = start_worker(executor_url, a.concurrency, work / "worker.log")
    try:
        with target(a.db, "tasks") as (data_dir, db), ServerProcess.start(
                data_dir, db, "--executor", executor_url,
                "--task-dir", str(task_dir), timeout=90) as server:
            url, key = server.url, server.api_key
            conn = pyconnector.connectors(api_key=key, URL=url)
            probe = conn.Task(projectName="bench-latency", jobName="first-line")
            probe.deployTask(program, "py")
            probe.waitForRun(probe.startTask()["run"])  # warm-up, not counted
            python = probe.getLog().split()[1]
            log(f"platform {url}, db {a.db}, tasks run with {python}, executor concurrency "
                f"{a.concurrency}")

            log(f"deploying {a.tasks} tasks")
            t0 = time.time()
            many = deploy_many(url, key, "bench-throughput", a.tasks, program, a.clients)
            log(f"deployed in {time.time() - t0:.1f} s")
            delayed = [conn.DelayedTask(int(time.time() + 86_400) * 1000,
                                        projectName="bench-schedule", jobName=f"delayed-{i}")
                       for i in range(a.delayed)]
            for task in delayed:
                task.deployTask(program, "py")

            for run in range(a.runs):
                log(f"run {run + 1}/{a.runs}: dispatch latency, {a.latency_runs} runs")
                r = latency_round(probe, python, a.latency_runs, work)
                for m, k, q in ((lat_p50, "returned", 50), (lat_p99, "returned", 99),
                                (called_p50, "called", 50)):
                    m.ours.append(quantile(r[k], q) * 1000)
                    m.base.append(quantile(r["raw"], q) * 1000)

                log(f"run {run + 1}/{a.runs}: throughput, {a.tasks} tasks")
                t = throughput_round(many, run + 1)
                b = raw_throughput(python, program, a.tasks, a.concurrency, work)
                thr.ours.append(t["rate"])
                thr.base.append(b["rate"])
                e = executor_alone(python, program, a.tasks, a.concurrency) \
                    if a.executor == "local" else {"rate": math.nan, "succeeded": 0}
                if a.executor == "local":
                    alone.ours.append(e["rate"])
                    alone.base.append(b["rate"])
                starts.ours.append(t["start_rate"])
                log(f"  ours {t['rate']:.1f} tasks/s ({t['succeeded']}/{a.tasks} succeeded, "
                    f"states {t['states']}); raw {b['rate']:.1f}/s ({b['succeeded']} ok); "
                    f"executor alone {e['rate']:.1f}/s ({e['succeeded']} ok)")
                if t["succeeded"] != a.tasks:
                    problems.append(f"run {run + 1}: {a.tasks - t['succeeded']} of {a.tasks} "
                                    f"runs did not succeed (states {t['states']})")
                if t["wrong_numbers"]:
                    problems.append(f"run {run + 1}: startTask numbered runs unexpectedly: "
                                    f"{t['wrong_numbers'][:5]}")
                if t["lagging_status"]:
                    problems.append(f"run {run + 1}, throughput: {len(t['lagging_status'])} "
                                    f"task(s) whose run succeeded still show another status "
                                    f"3 s later: {t['lagging_status'][:5]}")

                log(f"run {run + 1}/{a.runs}: {a.delayed} delayed tasks due at one second")
                d = delayed_round(delayed, run + 1, lead=3.0)
                raw = [raw_spawn(python, work) for _ in range(a.delayed)]
                delayed_p50.ours.append(statistics.median(d) * 1000)
                delayed_p50.base.append(statistics.median(raw) * 1000)
                delayed_max.ours.append(max(d) * 1000)
                delayed_max.base.append(max(raw) * 1000)
                if stuck := wrong_status(delayed):
                    problems.append(f"run {run + 1}, delayed: {len(stuck)} task(s) whose run "
                                    f"succeeded show another status: {stuck[:5]}")

            rec: list[dict[str, float]] = []
            if a.accuracy:
                log("recurrent task on * * * * *, recurrenceLimit 2 (about 2 minutes)")
                rec = recurrent(conn, program)
                if stuck := wrong_status([conn.Task(projectName="bench-schedule",
                                                    jobName="every-minute")]):
                    problems.append(f"recurrent: its runs ended, its status is {stuck}")
            conn.close()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(task_dir, ignore_errors=True)

    load = os.getloadavg()
    print(f"\n{a.db}, executor {executor_url}, tasks run with "
          f"{python}; medians of {a.runs} run(s); load average now "
          f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    print("| What | Ours, median (runs) | Baseline, same run | Difference | Ratio | Goal | "
          "Met? |")
    print("|---|---|---|---|---|---|---|")
    rows = [
        row(f"dispatch latency p50, ms (`startTask()` returned → first line; "
            f"{a.latency_runs} runs)", lat_p50),
        row("dispatch latency p99, ms", lat_p99),
        row("`startTask()` called → first line p50, ms", called_p50),
        row(f"throughput, tasks/s ({a.tasks} tasks, first start → last end)", thr),
        row(f"`startTask()` calls/s ({a.clients} client threads)", starts),
        *([row(f"the executor alone, jobs/s ({a.tasks} jobs, no service around it)", alone)]
          if a.executor == "local" else []),
        row(f"delayed, due second → first line p50, ms ({a.delayed} tasks)", delayed_p50),
        row("delayed, due second → first line max, ms", delayed_max),
    ]
    for r in rows:
        print("| " + " | ".join(r) + " |")
    for i, r in enumerate(rec, 1):
        print(f"| recurrent `* * * * *`, run {i}: slot → first line, ms | "
              f"**{r['first_line'] * 1000:.0f}** | | | | < 1000 | "
              f"{'met' if r['first_line'] < 1 else '**NOT MET**'} |")
        print(f"| recurrent, run {i}: slot → executor's start (`startedOn`), ms | "
              f"{r['started'] * 1000:.0f} | | | | | |")
    if problems:
        print("\nProblems:")
        for p in problems:
            print(f"- {p}")


if __name__ == "__main__":
    main()

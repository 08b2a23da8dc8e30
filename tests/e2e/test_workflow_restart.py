"""Workflow instances across platform restarts, against real ``pyconnector serve``
processes: everything an instance knows is in the database.

- Killed with SIGKILL while a step runs a long task, started again on the same data dir:
  the steps that had finished never run again, the killed step fails (its run lost with
  the process), the instance ends FAILED, and ``recover()`` with recovery mode on
  finishes it running only what had not succeeded.
- Stopped cleanly while the instance is RUNNING between two steps: it goes on by itself.
- Two processes on one PostgreSQL database: each step of an instance runs exactly once
  (a step is claimed by a compare-and-set before its task starts), and an abort through
  either stops a step running on the other.

Every step appends its name to a trail file outside the platform, so "ran once" is
counted by the tasks themselves as well as by their runs.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from conftest import Server, start_server, wait_for
from test_task_schedules import _alive, _end_orphan

pytestmark = pytest.mark.e2e

TS = "/TaskService/v1.0"
WF = "/WorkflowService/v1.0"
#: appends its name to the trail; with a pause, the first run of a step (no marker yet)
#: prints its pid and sleeps that long, a later one goes straight on
STEP = b"""\
import os, sys, time
name, trail, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(trail, "a") as f:
    f.write(name + "\\n")
marker = trail + "." + name
if pause and not os.path.exists(marker):
    open(marker, "w").close()
    print("pid", os.getpid(), flush=True)
    time.sleep(pause)
print(name, "done", flush=True)
"""
END = ("SUCCEEDED", "FAILED", "ABORTED")


@pytest.fixture
def trail() -> Iterator[Path]:
    """A file the tasks append to: in a directory of /tmp every account may write (tasks
    of a root platform run as nobody, who cannot reach pytest's tmp_path)."""
    where = Path(tempfile.mkdtemp(prefix="wf-trail-"))
    where.chmod(0o777)
    yield where / "trail.txt"
    shutil.rmtree(where, ignore_errors=True)


def _client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=30)


def _task(c: httpx.Client, name: str, trail: Path, pause: float = 0) -> str:
    if c.get(f"{TS}/projects/wf").status_code == 404:
        assert c.post(f"{TS}/projects", json={"projectName": "wf"}).status_code == 201
    r = c.post(f"{TS}/projects/wf/tasks", json={"jobName": name})
    assert r.status_code == 201, r.text
    tid = r.json()["jobId"]
    r = c.post(f"{TS}/projects/wf/tasks/{tid}/deploy", files={"file": ("main.py", STEP)},
               data={"runTime": "py", "args": json.dumps([name, str(trail), str(pause)])})
    assert r.status_code == 200, r.text
    return str(tid)


def _define(c: httpx.Client, edges: list[tuple[str, str]], name: str = "proc") -> str:
    r = c.post(f"{WF}/definitions", json={
        "processName": name, "processVersion": "v1",
        "links": [{"source": a, "destination": b} for a, b in edges]})
    assert r.status_code == 201, r.text
    r = c.post(f"{WF}/definitions/{name}/v1/instances")
    assert r.status_code == 201, r.text
    return str(r.json()["instanceId"])


def _instance(c: httpx.Client, iid: str) -> dict[str, Any]:
    r = c.get(f"{WF}/instances/{iid}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _steps(c: httpx.Client, iid: str) -> dict[str, dict[str, Any]]:
    """The instance's steps by base task id."""
    return {s["baseTaskId"]: s for s in _instance(c, iid)["tasks"]}


def _ended(c: httpx.Client, iid: str, timeout: float = 60) -> dict[str, Any]:
    wait_for(f"instance {iid} to end", lambda: _instance(c, iid)["state"] in END, timeout)
    return _instance(c, iid)


def _runs(c: httpx.Client, copy: str) -> list[dict[str, Any]]:
    r = c.get(f"{TS}/projects/wf/tasks/{copy}/runs")
    assert r.status_code == 200, r.text
    return list(r.json())


def _run_counts(c: httpx.Client, iid: str, names: dict[str, str]) -> dict[str, int]:
    """How many runs each step's copy has had, by step name."""
    return {names[base]: len(_runs(c, s["copiedTaskId"]))
            for base, s in _steps(c, iid).items()}


def _trail(trail: Path) -> Counter[str]:
    return Counter(trail.read_text().split()) if trail.exists() else Counter()


def test_a_killed_platform_loses_only_the_running_step_and_recover_finishes(
        tmp_path: Path, trail: Path) -> None:
    """first → (side, long → last): first and side have succeeded and long is running
    when the platform is killed."""
    server = start_server(tmp_path / "data")
    orphan = None
    try:
        key = server.new_key()
        with _client(server, key) as c:
            ids = {n: _task(c, n, trail, pause=60 if n == "long" else 0)
                   for n in ("first", "side", "long", "last")}
            names = {v: k for k, v in ids.items()}
            iid = _define(c, [(ids["first"], ids["side"]), (ids["first"], ids["long"]),
                              (ids["long"], ids["last"])])
            assert c.put(f"{WF}/definitions/proc/v1/recovery",
                         json={"recoveryMode": True}).status_code == 200
            assert c.post(f"{WF}/instances/{iid}/initiate").status_code == 200
            long_copy = _steps(c, iid)[ids["long"]]["copiedTaskId"]
            wait_for("the long step to print its pid", lambda: any(
                r["state"] == "running" for r in _runs(c, long_copy)) and c.get(
                    f"{TS}/projects/wf/tasks/{long_copy}/runs/1/log").text.startswith("pid"),
                30)
            orphan = int(c.get(f"{TS}/projects/wf/tasks/{long_copy}/runs/1/log").text
                         .split()[1])
            wait_for("side to succeed", lambda: _steps(c, iid)[ids["side"]]["state"]
                     == "SUCCEEDED", 30)
            before = _steps(c, iid)
            assert {names[b]: s["state"] for b, s in before.items()} == {
                "first": "SUCCEEDED", "side": "SUCCEEDED", "long": "RUNNING",
                "last": "PENDING"}
        server.stop(signal.SIGKILL)
        wait_for("the long task to die with its platform", lambda: not _alive(orphan), 10)
        assert _trail(trail) == Counter(first=1, side=1, long=1)

        server = start_server(tmp_path / "data")
        with _client(server, key) as c:
            failed = _ended(c, iid, timeout=30)
            assert failed["state"] == "FAILED", failed
            steps = _steps(c, iid)
            assert {names[b]: s["state"] for b, s in steps.items()} == {
                "first": "SUCCEEDED", "side": "SUCCEEDED", "long": "FAILED",
                "last": "PENDING"}
            assert "lost" in steps[ids["long"]]["reason"], steps[ids["long"]]
            assert [r["state"] for r in _runs(c, long_copy)] == ["lost"]
            # nothing that had finished ran again at the restart
            assert _run_counts(c, iid, names) == {"first": 1, "side": 1, "long": 1,
                                                  "last": 0}
            history = c.get(f"{WF}/instances/{iid}/history").json()
            assert sorted((names[h["baseTaskId"]], h["state"]) for h in history) == [
                ("first", "succeeded"), ("long", "lost"), ("side", "succeeded")]

            r = c.post(f"{WF}/instances/{iid}/recover")
            assert r.status_code == 200 and r.json()["state"] == "RUNNING", r.text
            done = _ended(c, iid)
            assert done["state"] == "SUCCEEDED" and done["recoveries"] == 1, done
            assert _run_counts(c, iid, names) == {"first": 1, "side": 1, "long": 2,
                                                  "last": 1}
            assert {names[s["baseTaskId"]]: s["run"] for s in done["tasks"]} == {
                "first": 1, "side": 1, "long": 2, "last": 1}
        assert _trail(trail) == Counter(first=1, side=1, long=2, last=1)
    finally:
        server.stop(signal.SIGKILL)
        _end_orphan(orphan)


def test_an_instance_stopped_between_two_steps_goes_on_after_a_clean_restart(
        tmp_path: Path, trail: Path) -> None:
    """one → two. The moment between two steps lasts milliseconds (the engine starts the
    next one when the run ends), so the test makes it: pause while ``one`` runs, stop the
    platform once ``one`` has succeeded, and write back RUNNING - what a stop at that
    moment leaves in the database."""
    server = start_server(tmp_path / "data")
    try:
        key = server.new_key()
        with _client(server, key) as c:
            ids = {n: _task(c, n, trail, pause=2 if n == "one" else 0)
                   for n in ("one", "two")}
            names = {v: k for k, v in ids.items()}
            iid = _define(c, [(ids["one"], ids["two"])])
            assert c.post(f"{WF}/instances/{iid}/initiate").status_code == 200
            # paused once one runs: a pause before the engine took it would hold it too
            wait_for("one to start", lambda: _steps(c, iid)[ids["one"]]["run"] is not None,
                     30)
            assert c.post(f"{WF}/instances/{iid}/pause").status_code == 200
            wait_for("one to succeed", lambda: _steps(c, iid)[ids["one"]]["state"]
                     == "SUCCEEDED", 30)
            assert _steps(c, iid)[ids["two"]]["state"] == "PENDING"
        server.stop()  # SIGTERM: a clean stop
        with sqlite3.connect(tmp_path / "data" / "pyconnector.db") as db:
            assert db.execute("UPDATE workflow_instance SET state = 'RUNNING' WHERE id = ?",
                              (int(iid[1:]),)).rowcount == 1
        assert _trail(trail) == Counter(one=1)

        server = start_server(tmp_path / "data")
        with _client(server, key) as c:
            done = _ended(c, iid, timeout=30)
            assert done["state"] == "SUCCEEDED", done
            assert _run_counts(c, iid, names) == {"one": 1, "two": 1}
        assert _trail(trail) == Counter(one=1, two=1)
    finally:
        server.stop(signal.SIGKILL)


def test_two_processes_on_postgresql_run_each_step_once(tmp_path: Path, trail: Path,
                                                        own_pg_url: str) -> None:
    """A fan-out of 12 steps between a head and a tail, twice over: both processes' engines
    look at every instance, and each step's task runs once. Deploys are shared through
    ``--blobs`` (a step may run on either process)."""
    shared = tmp_path / "blobs"
    a = start_server(tmp_path / "a", own_pg_url, "--blobs", shared.as_uri())
    b = start_server(tmp_path / "b", own_pg_url, "--blobs", shared.as_uri())
    try:
        key = a.new_key()
        with _client(a, key) as ca, _client(b, key) as cb:
            ids = {n: _task(ca, n, trail) for n in ["head", "tail"] + [
                f"mid{i}" for i in range(12)]}
            names = {v: k for k, v in ids.items()}
            edges = [(ids["head"], ids[f"mid{i}"]) for i in range(12)] + [
                (ids[f"mid{i}"], ids["tail"]) for i in range(12)]
            first = _define(ca, edges)
            r = cb.post(f"{WF}/definitions/proc/v1/instances")
            assert r.status_code == 201, r.text
            second = r.json()["instanceId"]
            assert ca.post(f"{WF}/instances/{first}/initiate").status_code == 200
            assert cb.post(f"{WF}/instances/{second}/initiate").status_code == 200
            for iid in (first, second):
                done = _ended(cb, iid, timeout=120)
                assert done["state"] == "SUCCEEDED", done
                assert set(_run_counts(ca, iid, names).values()) == {1}
                assert all(s["run"] == 1 for s in done["tasks"])
                assert len(ca.get(f"{WF}/instances/{iid}/history").json()) == len(ids)
        assert _trail(trail) == Counter({n: 2 for n in ids})
    finally:
        b.stop()
        a.stop()


def test_an_abort_through_one_process_stops_a_step_running_on_the_other(
        tmp_path: Path, trail: Path, own_pg_url: str) -> None:
    """The abort stopped the runs of its own process only: a step running on the other
    kept running to its end. Every process's engine now stops its own runs of an
    aborted instance."""
    shared = tmp_path / "blobs"
    servers = [start_server(tmp_path / n, own_pg_url, "--blobs", shared.as_uri())
               for n in ("a", "b")]
    orphan = None
    try:
        key = servers[0].new_key()
        with _client(servers[0], key) as c:
            ids = {n: _task(c, n, trail, pause=60 if n == "long" else 0)
                   for n in ("long", "after")}
            iid = _define(c, [(ids["long"], ids["after"])])
            assert c.post(f"{WF}/instances/{iid}/initiate").status_code == 200
            copy = _steps(c, iid)[ids["long"]]["copiedTaskId"]
            log = f"{TS}/projects/wf/tasks/{copy}/runs/1/log"
            wait_for("the long step to print its pid",
                     lambda: c.get(log).text.startswith("pid"), 30)
            orphan = int(c.get(log).text.split()[1])
        ancestors = {p.pid for p in psutil.Process(orphan).parents()}
        [runs_it] = [s for s in servers if s.pid in ancestors]
        [other] = [s for s in servers if s is not runs_it]
        with _client(other, key) as c:
            assert c.post(f"{WF}/instances/{iid}/abort").status_code == 200
            wait_for("the step's run to be stopped", lambda: _runs(c, copy)[0]["state"]
                     not in ("queued", "running"), 15)
            assert _runs(c, copy)[0]["state"] == "stopped"
            wait_for("the step to be aborted", lambda: _steps(c, iid)[ids["long"]]["state"]
                     == "ABORTED", 15)
            inst = _instance(c, iid)
            assert inst["state"] == "ABORTED"
            assert _steps(c, iid)[ids["after"]]["state"] == "PENDING"
        assert not _alive(orphan)
        assert _trail(trail) == Counter(long=1)
    finally:
        for s in servers:
            s.stop()
        _end_orphan(orphan)

"""Task schedules against real ``pyconnector serve`` processes: a slot missed while the
platform was down (fired once at the restart, or skipped past the catch-up time), one run
per slot when several processes share PostgreSQL, a recurrent schedule's timing and its
end, and the runs a crashed platform leaves behind.

``test_a_recurrent_schedule_fires_on_its_slots_then_ends`` waits for two whole-minute cron
slots: it takes up to about two minutes.

A task's process dies with a platform killed with SIGKILL (the local executor gives it a
parent-death signal): its run is ``lost``, and nothing of it runs on unwatched.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from conftest import Server, start_server, wait_for

from pyconnector.times import parse_time

pytestmark = pytest.mark.e2e

TS = "/TaskService/v1.0"
HELLO = b"print('hello')\n"
#: prints its pid, then runs for a minute
LONG = b"import os, time\nprint('pid', os.getpid(), flush=True)\ntime.sleep(60)\n"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=30)


def _task(c: httpx.Client, job: str, kind: str = "task", code: bytes = HELLO,
          project: str = "sched") -> str:
    """A deployed task of ``kind`` (no schedule yet); its path."""
    if c.get(f"{TS}/projects/{project}").status_code == 404:
        assert c.post(f"{TS}/projects", json={"projectName": project}).status_code == 201
    r = c.post(f"{TS}/projects/{project}/tasks", json={"jobName": job, "type": kind})
    assert r.status_code == 201, r.text
    path = f"{TS}/projects/{project}/tasks/{r.json()['jobId']}"
    r = c.post(f"{path}/deploy", files={"file": ("main.py", code)}, data={"runTime": "py"})
    assert r.status_code == 200, r.text
    return path


def _runs(c: httpx.Client, path: str) -> list[dict[str, Any]]:
    r = c.get(f"{path}/runs")
    assert r.status_code == 200, r.text
    return r.json()


def _ended_run(c: httpx.Client, path: str, number: int = 1,
               timeout: float = 30) -> dict[str, Any]:
    wait_for(f"run {number} of {path} to end",
             lambda: any(r["run"] == number and r["endedOn"] for r in _runs(c, path)),
             timeout)
    return c.get(f"{path}/runs/{number}").json()


def _ms(tcup: str) -> int:
    return parse_time(tcup)


# -- 1. a slot missed while the platform was down -------------------------------------------
def _stop_before_the_slot(tmp_path: Path, own_db_url: str, job: str,
                          *args: str) -> tuple[Path, str, str, int]:
    """A delayed task due 3 s from now on a platform that is stopped before the slot: the
    data dir, a key, the task's path and its slot."""
    data = tmp_path / "data"
    first = start_server(data, own_db_url, *args)
    try:
        key = first.new_key()
        with _client(first, key) as c:
            path = _task(c, job, "delayed")
            slot = _now_ms() + 3000
            r = c.put(f"{path}/schedule", json={"delayedTime": slot})
            assert r.status_code == 200 and r.json()["status"] == "SCHEDULED", r.text
    finally:
        first.stop()
    assert _now_ms() < slot, "the platform took too long to stop: the slot was not missed"
    return data, key, path, slot


def test_a_slot_missed_while_down_fires_once_after_the_restart(tmp_path: Path,
                                                               own_db_url: str) -> None:
    data, key, path, slot = _stop_before_the_slot(tmp_path, own_db_url, "missed")
    time.sleep(max(0.0, (slot - _now_ms()) / 1000) + 0.5)
    restarted_ms = _now_ms()
    second = start_server(data, own_db_url)
    try:
        with _client(second, key) as c:
            run = _ended_run(c, path)
            assert (run["trigger"], run["state"]) == ("schedule", "succeeded"), run
            assert _ms(run["slot"]) == slot
            # fired by the new process, soon after it started (not before the stop)
            assert restarted_ms <= _ms(run["queuedOn"]) <= _now_ms(), run
            assert _ms(run["queuedOn"]) - restarted_ms < 15_000, run
            time.sleep(1.0)  # five scheduler ticks: nothing fires the slot again
            assert len(_runs(c, path)) == 1
            task = c.get(path).json()
            assert task["status"] == "COMPLETED" and task["schedule"]["nextRun"] is None, task
    finally:
        second.stop()


def test_a_slot_missed_by_more_than_the_catch_up_time_is_skipped_and_says_so(
        tmp_path: Path, own_db_url: str) -> None:
    catch_up = ("--task-catch-up-seconds", "1")
    data, key, path, slot = _stop_before_the_slot(tmp_path, own_db_url, "too-late", *catch_up)
    time.sleep(max(0.0, (slot - _now_ms()) / 1000) + 2.0)  # missed by more than 1 s
    second = start_server(data, own_db_url, *catch_up)
    try:
        with _client(second, key) as c:
            wait_for("the skipped slot to show on the task",
                     lambda: c.get(path).json()["status"] != "SCHEDULED", 10)
            task = c.get(path).json()
            assert task["status"] == "MISSED" and task["schedule"]["nextRun"] is None, task
            time.sleep(1.0)
            assert _runs(c, path) == []  # it did not run
            # a missed task can still be started by hand
            assert c.post(f"{path}/start").json()["run"] == 1
            assert _ended_run(c, path)["state"] == "succeeded"
            assert c.get(path).json()["status"] == "COMPLETED"
    finally:
        second.stop()


# -- 2. several processes on one PostgreSQL -------------------------------------------------
def test_two_processes_fire_each_slot_once(tmp_path: Path, own_pg_url: str) -> None:
    """Both processes run the scheduler over the same tables: every slot gets one run row,
    fired by either; the deploys (through ``a``) reach ``b`` through the shared blob store,
    so every run succeeds wherever it fired."""
    shared = ("--blobs", (tmp_path / "shared").as_uri())
    a = start_server(tmp_path / "a", own_pg_url, *shared)
    b = start_server(tmp_path / "b", own_pg_url, *shared)
    try:
        key = a.new_key()
        with _client(a, key) as ca, _client(b, key) as cb:
            paths = [_task(ca, f"d{i}", "delayed") for i in range(6)]
            slot = _now_ms() + 3000
            for path in paths:
                assert ca.put(f"{path}/schedule", json={"delayedTime": slot}).status_code == 200
            for path in paths:
                _ended_run(ca, path, timeout=30)
            time.sleep(1.0)  # let any second firing show
            for path in paths:
                runs = _runs(cb, path)
                assert len(runs) == 1, (path, runs)
                run = runs[0]
                assert (run["trigger"], _ms(run["slot"])) == ("schedule", slot), run
                assert run["state"] == "succeeded", run
                assert cb.get(f"{path}/runs/1/log").text == "hello\n"
                task = ca.get(path).json()
                assert task["schedule"]["nextRun"] is None, task
                assert task["status"] == "COMPLETED", (task, run)
    finally:
        b.stop()
        a.stop()


def test_one_failing_slot_does_not_hold_up_the_others(tmp_path: Path, own_db_url: str) -> None:
    """A scheduled task that is not deployed (it cannot run) is due first; a deployed
    one due after it still fires, and the bad slot is not retried for ever."""
    server = start_server(tmp_path / "data", own_db_url)
    try:
        with _client(server, server.new_key()) as c:
            assert c.post(f"{TS}/projects", json={"projectName": "p"}).status_code == 201
            r = c.post(f"{TS}/projects/p/tasks", json={"jobName": "bare", "type": "delayed"})
            bare = f"{TS}/projects/p/tasks/{r.json()['jobId']}"
            good = _task(c, "good", "delayed", project="p")
            now = _now_ms()
            assert c.put(f"{bare}/schedule", json={"delayedTime": now + 500}).status_code == 200
            assert c.put(f"{good}/schedule", json={"delayedTime": now + 1000}).status_code == 200
            assert _ended_run(c, good, timeout=15)["state"] == "succeeded"
            assert _runs(c, bare) == []
            assert c.get(bare).json()["schedule"]["nextRun"] is None  # the slot passed
    finally:
        server.stop()


# -- 3. a recurrent schedule's timing -------------------------------------------------------
def test_a_recurrent_schedule_fires_on_its_slots_then_ends(tmp_path: Path) -> None:
    """Slow: waits for two whole-minute slots (up to about two minutes)."""
    server = start_server(tmp_path / "data")
    try:
        with _client(server, server.new_key()) as c:
            path = _task(c, "every-minute", "recurrent")
            r = c.put(f"{path}/schedule", json={"cron": "* * * * *", "recurrenceLimit": 2})
            assert r.status_code == 200 and r.json()["status"] == "SCHEDULED", r.text
            first_slot = _ms(c.get(path).json()["schedule"]["nextRun"])
            assert first_slot % 60_000 == 0
            wait = (first_slot - _now_ms()) / 1000 + 60 + 30
            second = _ended_run(c, path, 2, timeout=wait)
            runs = _runs(c, path)
            assert [x["run"] for x in runs] == [1, 2], runs
            assert [_ms(x["slot"]) for x in runs] == [first_slot, first_slot + 60_000], runs
            for run in runs:
                assert (run["trigger"], run["state"]) == ("schedule", "succeeded"), run
                late = _ms(run["startedOn"]) - _ms(run["slot"])
                assert 0 <= late <= 1000, (late, run)
            assert second["run"] == 2
            task = c.get(path).json()
            assert task["schedule"]["nextRun"] is None, task
            assert task["schedule"]["fired"] == 2, task
            assert task["status"] == "COMPLETED", task
    finally:
        server.stop()


# -- 4. runs a crash leaves behind ----------------------------------------------------------
def test_a_run_left_by_a_crash_is_lost_and_the_task_starts_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server(data)
    orphan = None
    try:
        key = first.new_key()
        with _client(first, key) as c:
            path = _task(c, "long", code=LONG)
            assert c.post(f"{path}/start").json()["run"] == 1
            wait_for("the long run to print its pid",
                     lambda: c.get(f"{path}/runs/1/log").text.startswith("pid "), 20)
            orphan = int(c.get(f"{path}/runs/1/log").text.split()[1])
            assert c.get(f"{path}/runs/1").json()["state"] == "running"
        first.stop(signal.SIGKILL)
        wait_for("the task's process to die with its platform",
                 lambda: not _alive(orphan), 10)
        second = start_server(data)
        try:
            with _client(second, key) as c:
                run = c.get(f"{path}/runs/1").json()
                assert run["state"] == "lost" and run["reason"], run
                assert run["endedOn"] is not None, run
                assert c.get(path).json()["status"] == "FAILED"  # not RUNNING: nothing runs
                started = c.post(f"{path}/start")
                assert started.status_code == 200 and started.json()["run"] == 2, started.text
                wait_for("run 2 to run",
                         lambda: c.get(f"{path}/runs/2").json()["state"] == "running", 20)
                assert c.get(path).json()["status"] == "RUNNING"
                c.post(f"{path}/stop")
                assert _ended_run(c, path, 2)["state"] == "stopped"
        finally:
            second.stop()
    finally:
        first.stop(signal.SIGKILL)
        _end_orphan(orphan)


def _alive(pid: int | None) -> bool:
    """Whether ``pid`` is still the long run's process (pids are reused)."""
    try:
        return pid is not None and "main.py" in " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def _end_orphan(pid: int | None) -> None:
    """End the long run's process if it outlived the killed platform (it runs in a
    session of its own; see the module docstring)."""
    if pid is None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        proc = psutil.Process(pid)
        if "main.py" in proc.cmdline():
            proc.kill()

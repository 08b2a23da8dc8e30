"""The Workflow connector against a real platform: definitions from Task objects or ids, a
diamond run in order, pause and resume, abort, recover with recovery mode (failed and
aborted instances; succeeded steps kept), listings as json, table, dataframe and csv; and
the Task connector's ids-that-do-not-exist decision the guide's Workflow lines rely on."""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import pyconnector

#: appends its name to trail.txt (from upstream through a link, if any)
STEP = """\
import os, sys
name = sys.argv[1]
trail = open("input/trail.txt").read() if os.path.exists("input/trail.txt") else ""
open("trail.txt", "w").write(trail + name + "\\n")
print(trail.replace("\\n", " ") + name, flush=True)
"""
#: the first run (no marker yet) makes the marker, then fails or hangs; later runs succeed
ONCE = """\
import os, sys, time
marker, how = sys.argv[1], sys.argv[2]
if not os.path.exists(marker):
    open(marker, "w").close()
    print("first run:", how, flush=True)
    if how == "fail":
        sys.exit(3)
    time.sleep(120)
print("again: fine", flush=True)
"""


@pytest.fixture
def conn(server: Any) -> Iterator[Any]:
    with server.connector() as c:
        yield c


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the tasks' account (``nobody`` under a root platform) can write."""
    path = Path(tempfile.mkdtemp(prefix="pyconnector-wf-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _task(conn: Any, tmp_path: Path, name: str, code: str = STEP,
          args: list[str] | None = None, project: str = "wf") -> Any:
    (tmp_path / f"{name}.py").write_text(code)
    task = conn.Task(projectName=project, jobName=name)
    task.deployTask(filename=tmp_path / f"{name}.py", runTime="py",
                    args=args if args is not None else [name])
    return task


def _link(down: Any, *ups: Any, name: str = "trail.txt") -> None:
    down.externalFileLinking(externalProjectIds=[u.projectId for u in ups],
                             externalTaskIds=[u.jobId for u in ups], fileNames=[name])


def _steps(status: dict[str, Any]) -> dict[str, str]:
    return {s["baseTaskId"]: s["state"] for s in status["tasks"]}


def _wait_step(proc: Any, base: str, states: tuple[str, ...], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _steps(proc.status())[base] not in states:
        assert time.monotonic() < deadline, proc.status()
        time.sleep(0.1)


def _wait_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not made"
        time.sleep(0.05)


# -- Task objects made with ids that do not exist ---------------------------------------------
def test_ids_that_do_not_exist_are_made_as_names_with_a_warning(conn: Any) -> None:
    with pytest.warns(UserWarning) as caught:
        t = conn.Task(projectId="P9909", jobId="T123")
    assert (t.projectName, t.jobName) == ("P9909", "T123")
    assert t.projectId != "P9909" and t.jobId != "T123"  # a fresh tenant has neither id
    message = str(caught[0].message)
    assert f"project 'P9909' is {t.projectId} 'P9909'" in message
    assert f"task 'T123' is {t.jobId} 'T123'" in message
    # The same ids again: the ones made, found by name (and the warning again).
    with pytest.warns(UserWarning, match=f"task 'T123' is {t.jobId}"):
        again = conn.Task(projectId="P9909", jobId="T123")
    assert (again.projectId, again.jobId) == (t.projectId, t.jobId)
    # The real ids: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = conn.Task(projectId=t.projectId, jobId=t.jobId)
    assert (same.projectName, same.jobName) == ("P9909", "T123")


def test_a_task_made_by_id_in_a_real_project_keeps_the_project(conn: Any) -> None:
    project = conn.Task(projectName="kept", jobName="first")
    with pytest.warns(UserWarning) as caught:
        t = conn.Task(projectId=project.projectId, jobId="T77")
    assert t.projectId == project.projectId and t.jobName == "T77"
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"task 'T77' is {t.jobId} 'T77'" in message and "project '" not in message


def test_the_warning_points_at_the_users_line(conn: Any) -> None:
    for make in (lambda: conn.Task(projectId="P8801", jobId="T8802"),
                 lambda: conn.DelayedTask(delayedTime="01-01-2099 00:00:00.000 UTC",
                                          projectId="P8801", jobId="T8803")):
        with pytest.warns(UserWarning) as caught:
            make()
        assert caught[0].filename == __file__, caught[0].filename


# -- definitions ----------------------------------------------------------------------------
def test_definitions_from_tasks_or_ids_and_what_is_refused(conn: Any, tmp_path: Path) -> None:
    a, b = _task(conn, tmp_path, "a"), _task(conn, tmp_path, "b")
    wf = conn.Workflow(taskList=[(a, b)], processName="p", processVersion="v1")
    assert wf.definition["links"] == [{"source": a.jobId, "destination": b.jobId}]
    assert repr(wf) == f"<Workflow 'p' version 'v1': ({a.jobId},{b.jobId})>"
    # The same graph again, written with ids and start/end: the saved definition.
    same = conn.Workflow(taskList=[("start", a.jobId), (a.jobId, b), (b, "end")],
                         processName="p", processVersion="v1")
    assert same.definition["createdOn"] == wf.definition["createdOn"]
    # Without a taskList: the saved one.
    assert conn.Workflow(processName="p", processVersion="v1").definition == wf.definition
    with pytest.raises(pyconnector.ConflictError):  # another graph, same version
        conn.Workflow(taskList=[(b, a)], processName="p", processVersion="v1")
    with pytest.raises(pyconnector.BadRequestError, match="cycle"):
        conn.Workflow(taskList=[(a, b), (b, a)], processName="p", processVersion="v2")
    with pytest.raises(pyconnector.BadRequestError, match="given twice"):
        conn.Workflow(taskList=[(a, b), (a, b)], processName="p", processVersion="v2")
    with pytest.raises(pyconnector.BadRequestError, match="T999999"):
        conn.Workflow(taskList=[(a, "T999999")], processName="p", processVersion="v2")
    with pytest.raises(pyconnector.ConfigError, match="taskList"):
        conn.Workflow(taskList=[], processName="p", processVersion="v2")
    with pytest.raises(pyconnector.ConfigError, match=r"taskList\[0\]"):
        conn.Workflow(taskList=[(a, b, a)], processName="p", processVersion="v2")
    with pytest.raises(pyconnector.ConfigError, match="processVersion"):
        conn.Workflow(taskList=[(a, b)], processName="p")
    with pytest.raises(pyconnector.NotFoundError):
        conn.Workflow(processName="p", processVersion="never")
    assert "deleted" in wf.delete()["message"]
    with pytest.raises(pyconnector.NotFoundError):
        wf.getDefinition()


# -- running --------------------------------------------------------------------------------
def test_a_diamond_runs_in_order_and_reads_as_tables(conn: Any, tmp_path: Path) -> None:
    a, b, c, d = (_task(conn, tmp_path, n) for n in "abcd")
    _link(b, a)
    _link(c, a)
    _link(d, b, c)
    wf = conn.Workflow(taskList=[(a, b), (a, c), (b, d), (c, d)], processName="diamond",
                       processVersion="1")
    proc = wf.preInitiate()
    assert proc.status()["state"] == "PREPARED"
    copies = {m["baseTaskId"]: m["copiedTaskId"] for m in proc.getMapping()["taskIds"]}
    assert set(copies) == {a.jobId, b.jobId, c.jobId, d.jobId}
    assert not set(copies.values()) & set(copies)  # copies, not the originals
    d_copy = conn.Task(projectId=d.projectId, jobId=copies[d.jobId])
    # The copies' links were rewired: d's copy takes trail.txt from b's and c's copies.
    linked = {f"T{link['taskId']}" for link in d_copy.getStatus()["links"]}
    assert linked == {copies[b.jobId], copies[c.jobId]}
    assert proc.initiate()["state"] == "RUNNING"
    with pytest.raises(pyconnector.ConflictError, match="PREPARED"):
        proc.initiate()  # once
    end = proc.waitForEnd(timeout=120)
    assert end["state"] == "SUCCEEDED" and set(_steps(end).values()) == {"SUCCEEDED"}
    assert repr(proc) == f"<WorkflowProcess {proc.instanceId} of 'diamond' version '1': " \
        "SUCCEEDED>"
    # d ran last, after a and one of b/c (the other's trail.txt of the same name).
    log = d_copy.getLog().split()
    assert log[0] == "a" and log[1] in ("b", "c") and log[-1] == "d"
    history = proc.getHistory(responseType="dataframe")
    assert isinstance(history, pd.DataFrame) and len(history) == 4
    assert set(history["state"]) == {"succeeded"} and set(history["exitCode"]) == {0}
    assert history["baseTaskId"].iloc[0] == a.jobId
    assert history["baseTaskId"].iloc[-1] == d.jobId
    assert history["endedOn"].iloc[0] <= history["startedOn"].iloc[-1]
    table = proc.status(responseType="table")
    assert isinstance(table, str) and table.count("SUCCEEDED") == 8  # instance + step, ×4
    assert "instanceState" in table and copies[d.jobId] in table
    csv = proc.getHistory(responseType="csv")
    assert csv.splitlines()[0].startswith("baseTaskId,copiedTaskId,run,state,exitCode")
    frame = wf.getInstances(responseType="dataframe")
    assert list(frame["instanceId"]) == [proc.instanceId]
    assert frame["tasks"].iloc[0].count("SUCCEEDED") == 4
    listed = wf.getInstances()
    assert [i["instanceId"] for i in listed] == [proc.instanceId]
    assert wf.getInstance(proc.instanceId).status()["state"] == "SUCCEEDED"
    with pytest.raises(pyconnector.PyConnectorError, match="responseType"):
        proc.status(responseType="xml")
    assert "deleted" in proc.delete()["message"]
    assert wf.getInstances() == []


def test_pause_holds_the_next_step_until_resume(conn: Any, tmp_path: Path,
                                                shared_dir: Path) -> None:
    gate = shared_dir / "gate"
    wait = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.05)\n"
    a = _task(conn, tmp_path, "gated", wait, [str(gate)])
    b = _task(conn, tmp_path, "after")
    proc = conn.Workflow(taskList=[(a, b)], processName="pausing",
                         processVersion="1").preInitiate()
    proc.initiate()
    _wait_step(proc, a.jobId, ("RUNNING",))
    assert proc.pause()["state"] == "PAUSED"
    gate.touch()  # a may finish now
    _wait_step(proc, a.jobId, ("SUCCEEDED",))
    # a's step was settled while the instance was paused: b did not start with it.
    status = proc.status()
    assert status["state"] == "PAUSED" and _steps(status)[b.jobId] == "PENDING"
    assert len(proc.getHistory()) == 1
    with pytest.raises(pyconnector.ConflictError, match="PAUSED"):
        proc.pause()
    assert proc.resume()["state"] == "RUNNING"
    assert proc.waitForEnd(timeout=60)["state"] == "SUCCEEDED"
    assert [h["baseTaskId"] for h in proc.getHistory()] == [a.jobId, b.jobId]


def test_abort_then_recover_keeps_what_succeeded(conn: Any, tmp_path: Path,
                                                 shared_dir: Path) -> None:
    first = _task(conn, tmp_path, "first")
    hangs = _task(conn, tmp_path, "hangs", ONCE, [str(shared_dir / "hung"), "hang"])
    last = _task(conn, tmp_path, "last")
    wf = conn.Workflow(taskList=[(first, hangs), (hangs, last)], processName="aborting",
                       processVersion="1")
    proc = wf.preInitiate()
    proc.initiate()
    _wait_step(proc, hangs.jobId, ("RUNNING",))
    _wait_file(shared_dir / "hung")  # its process is past the marker: recovery won't hang
    assert proc.abort()["state"] == "ABORTED"
    end = proc.waitForEnd(timeout=60)
    assert end["state"] == "ABORTED"
    assert _steps(end) == {first.jobId: "SUCCEEDED", hangs.jobId: "ABORTED",
                           last.jobId: "PENDING"}
    with pytest.raises(pyconnector.ConflictError, match="recovery mode is off"):
        proc.recover()
    assert wf.selectRecoveryMode(True)["recoveryMode"] is True
    assert proc.recover()["state"] == "RUNNING"
    end = proc.waitForEnd(timeout=60)
    assert end["state"] == "SUCCEEDED" and end["recoveries"] == 1
    runs = [(h["baseTaskId"], h["state"]) for h in proc.getHistory()]
    assert runs.count((first.jobId, "succeeded")) == 1 and len(runs) == 4  # first ran once
    assert runs[1][0] == hangs.jobId and runs[1][1] != "succeeded"  # stopped by the abort
    assert runs[2:] == [(hangs.jobId, "succeeded"), (last.jobId, "succeeded")]
    answer = proc.recover()  # a succeeded instance: nothing to recover, no error
    assert answer["state"] == "SUCCEEDED" and "nothing to recover" in answer["message"]
    with pytest.raises(pyconnector.ConflictError):
        proc.abort()


def test_a_failed_instance_recovers_only_its_failed_and_never_run_steps(
        conn: Any, tmp_path: Path, shared_dir: Path) -> None:
    up = _task(conn, tmp_path, "up")
    flaky = _task(conn, tmp_path, "flaky", ONCE, [str(shared_dir / "failed"), "fail"])
    side = _task(conn, tmp_path, "side")
    down = _task(conn, tmp_path, "down")
    wf = conn.Workflow(taskList=[(up, flaky), (up, side), (flaky, down), (side, down)],
                       processName="failing", processVersion="1")
    wf.selectRecoveryMode(True)
    proc = wf.preInitiate()
    proc.initiate()
    end = proc.waitForEnd(timeout=120)
    assert end["state"] == "FAILED"
    steps = _steps(end)
    assert (steps[up.jobId], steps[flaky.jobId], steps[down.jobId]) == (
        "SUCCEEDED", "FAILED", "PENDING")
    assert steps[side.jobId] == "SUCCEEDED"  # a parallel branch runs on
    reason = next(s["reason"] for s in end["tasks"] if s["baseTaskId"] == flaky.jobId)
    assert "failed" in reason
    failed_runs = proc.getHistory()
    assert [h["exitCode"] for h in failed_runs if h["baseTaskId"] == flaky.jobId] == [3]
    assert proc.recover()["state"] == "RUNNING"
    assert proc.waitForEnd(timeout=120)["state"] == "SUCCEEDED"
    ran = [h["baseTaskId"] for h in proc.getHistory()]
    assert sorted(ran) == sorted([up.jobId, side.jobId, flaky.jobId, flaky.jobId, down.jobId])


def test_a_prepared_instance_does_not_settle_by_itself(conn: Any, tmp_path: Path) -> None:
    a, b = _task(conn, tmp_path, "x"), _task(conn, tmp_path, "y")
    proc = conn.Workflow(taskList=[(a, b)], processName="idle",
                         processVersion="1").preInitiate()
    with pytest.raises(pyconnector.TimeoutError, match="PREPARED"):
        proc.waitForEnd(timeout=0.3)
    assert proc.abort()["state"] == "ABORTED"
    assert proc.waitForEnd(timeout=10)["state"] == "ABORTED"
    assert proc.getHistory() == []


def test_another_tenants_instances_are_not_found(server: Any, conn: Any,
                                                 tmp_path: Path) -> None:
    a, b = _task(conn, tmp_path, "mine"), _task(conn, tmp_path, "mine2")
    wf = conn.Workflow(taskList=[(a, b)], processName="own", processVersion="1")
    proc = wf.preInitiate()
    with server.connector() as other:
        from pyconnector.workflow import WorkflowProcess

        with pytest.raises(pyconnector.NotFoundError):
            WorkflowProcess(other.http, proc.instanceId).status()
        with pytest.raises(pyconnector.NotFoundError):
            other.Workflow(processName="own", processVersion="1")
        with pytest.raises(pyconnector.BadRequestError, match=a.jobId):
            other.Workflow(taskList=[(a.jobId, b.jobId)], processName="own",
                           processVersion="1")


def test_get_instances_reads_every_page(conn: Any, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform answers a page at a time; getInstances asks until a short page."""
    import pyconnector.workflow

    a, b = _task(conn, tmp_path, "pga"), _task(conn, tmp_path, "pgb")
    wf = conn.Workflow(taskList=[(a, b)], processName="paged", processVersion="v1")
    made = [wf.preInitiate().instanceId for _ in range(5)]
    monkeypatch.setattr(pyconnector.workflow, "PAGE", 2)
    assert [i["instanceId"] for i in wf.getInstances()] == made

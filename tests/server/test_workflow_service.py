"""The Workflow Service's API in-process, on both stores: definitions (any DAG; what is
not one refused), instances prepared with copies of their tasks, run in dependency order
with files passed down links, paused, resumed, aborted, recovered; their status and
history."""

from __future__ import annotations

import time
from typing import Any

import pytest

TS = "/TaskService/v1.0"
WF = "/WorkflowService/v1.0"
#: appends its name to trail.txt (taken from upstream through a link, if any) and sleeps
STEP = b"""\
import os, sys, time
name, pause = sys.argv[1], float(sys.argv[2])
trail = open("input/trail.txt").read() if os.path.exists("input/trail.txt") else ""
time.sleep(pause)
open("trail.txt", "w").write(trail + name + "\\n")
print(name, time.time(), flush=True)
"""
FAILS = b"import sys; print('failing'); sys.exit(3)\n"


@pytest.fixture
def api_any(make_app: Any, own_db_url: str) -> Any:
    return make_app(own_db_url)


def _task(api: Any, job: str, code: bytes = STEP, args: tuple[str, ...] = ("x", "0"),
          project: str = "wf") -> str:
    """A deployed task of project ``project``; its id."""
    if api.get(f"{TS}/projects/{project}").status_code == 404:
        assert api.post(f"{TS}/projects", json={"projectName": project}).status_code == 201
    r = api.post(f"{TS}/projects/{project}/tasks", json={"jobName": job})
    assert r.status_code == 201, r.text
    tid = r.json()["jobId"]
    import json
    r = api.post(f"{TS}/projects/{project}/tasks/{tid}/deploy",
                 files={"file": ("main.py", code)},
                 data={"runTime": "py", "args": json.dumps(list(args))})
    assert r.status_code == 200, r.text
    return str(tid)


def _link(api: Any, downstream: str, upstream: str, name: str = "trail.txt") -> None:
    r = api.put(f"{TS}/projects/wf/tasks/{downstream}/links",
                json={"externalProjectIds": ["wf"], "externalTaskIds": [upstream],
                      "fileNames": [name]})
    assert r.status_code == 200, r.text


def _define(api: Any, edges: list[tuple[str, str]], name: str = "proc",
            version: str = "v1") -> Any:
    return api.post(f"{WF}/definitions", json={
        "processName": name, "processVersion": version,
        "links": [{"source": a, "destination": b} for a, b in edges]})


def _wait(api: Any, iid: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        inst = api.get(f"{WF}/instances/{iid}").json()
        if inst["state"] in ("SUCCEEDED", "FAILED", "ABORTED"):
            return dict(inst)
        assert time.monotonic() < deadline, inst
        time.sleep(0.1)


def _copy_of(inst: dict[str, Any], base: str) -> str:
    return next(s["copiedTaskId"] for s in inst["tasks"] if s["baseTaskId"] == base)


def _log(api: Any, task: str, run: int = 1) -> str:
    return str(api.get(f"{TS}/projects/wf/tasks/{task}/runs/{run}/log").text)


def test_a_diamond_runs_in_order_with_its_files_passed_down(api_any: Any) -> None:
    a = _task(api_any, "a", args=("a", "0"))
    b = _task(api_any, "b", args=("b", "0.5"))
    c = _task(api_any, "c", args=("c", "0.5"))
    d = _task(api_any, "d", args=("d", "0"))
    _link(api_any, b, a)
    _link(api_any, c, a)
    _link(api_any, d, b)
    r = _define(api_any, [("start", a), (a, b), (a, c), (b, d), (c, d), (d, "end")])
    assert r.status_code == 201, r.text
    assert r.json()["tasks"] == [a, b, c, d]
    again = _define(api_any, [("start", a), (a, b), (a, c), (b, d), (c, d), (d, "end")])
    assert again.status_code == 200  # the same definition, saved already
    prepared = api_any.post(f"{WF}/definitions/proc/v1/instances")
    assert prepared.status_code == 201, prepared.text
    inst = prepared.json()
    iid = inst["instanceId"]
    assert inst["state"] == "PREPARED"
    assert {s["baseTaskId"] for s in inst["tasks"]} == {a, b, c, d}
    assert all(s["state"] == "PENDING" for s in inst["tasks"])
    mapping = api_any.get(f"{WF}/instances/{iid}/mapping").json()
    assert mapping == {"taskIds": [{"baseTaskId": s["baseTaskId"],
                                    "copiedTaskId": s["copiedTaskId"]}
                                   for s in inst["tasks"]]}
    # the copies' links point at the copies
    copy_b = api_any.get(f"{TS}/projects/wf/tasks/{_copy_of(inst, b)}").json()
    assert [link["taskId"] for link in copy_b["links"]] == [int(_copy_of(inst, a)[1:])]
    r = api_any.post(f"{WF}/instances/{iid}/initiate")
    assert r.status_code == 200, r.text
    done = _wait(api_any, iid)
    assert done["state"] == "SUCCEEDED", done
    assert all(s["state"] == "SUCCEEDED" and s["run"] == 1 for s in done["tasks"])
    # d ran after b and c, which ran together after a
    times = {n: float(_log(api_any, _copy_of(done, t)).split()[1])
             for n, t in (("a", a), ("b", b), ("c", c), ("d", d))}
    assert times["a"] < times["b"] and times["a"] < times["c"]
    assert abs(times["b"] - times["c"]) < 0.4, times  # in parallel
    assert times["d"] > max(times["b"], times["c"])
    out = api_any.get(f"{TS}/projects/wf/tasks/{_copy_of(done, d)}/runs/1/outputs/trail.txt")
    assert out.text == "a\nb\nd\n"
    # the originals never ran
    assert api_any.get(f"{TS}/projects/wf/tasks/{a}/runs").json() == []
    history = api_any.get(f"{WF}/instances/{iid}/history").json()
    assert [h["baseTaskId"] for h in history][0] == a and len(history) == 4
    assert all(h["state"] == "succeeded" and h["exitCode"] == 0 for h in history)
    again = api_any.post(f"{WF}/instances/{iid}/initiate")
    assert again.status_code == 409 and "SUCCEEDED" in again.json()["message"]


def test_a_failure_stops_what_depends_on_it_and_recover_reruns_only_that(
        api_any: Any) -> None:
    a = _task(api_any, "a", args=("a", "0"))
    bad = _task(api_any, "bad", code=FAILS)
    side = _task(api_any, "side", args=("side", "0"))
    after = _task(api_any, "after", args=("after", "0"))
    assert _define(api_any, [(a, bad), (a, side), (bad, after)]).status_code == 201
    iid = api_any.post(f"{WF}/definitions/proc/v1/instances").json()["instanceId"]
    api_any.post(f"{WF}/instances/{iid}/initiate")
    failed = _wait(api_any, iid)
    assert failed["state"] == "FAILED"
    states = {s["baseTaskId"]: s["state"] for s in failed["tasks"]}
    assert states == {a: "SUCCEEDED", bad: "FAILED", side: "SUCCEEDED", after: "PENDING"}
    reason = next(s["reason"] for s in failed["tasks"] if s["baseTaskId"] == bad)
    assert "failed" in reason and "exit code 3" in reason
    refused = api_any.post(f"{WF}/instances/{iid}/recover")
    assert refused.status_code == 409 and "recovery mode is off" in refused.json()["message"]
    r = api_any.put(f"{WF}/definitions/proc/v1/recovery", json={"recoveryMode": True})
    assert r.status_code == 200 and r.json()["recoveryMode"] is True
    # fix the failing copy, then recover: only it and the never-run one run again
    api_any.post(f"{TS}/projects/wf/tasks/{_copy_of(failed, bad)}/deploy",
                 files={"file": ("main.py", STEP)},
                 data={"runTime": "py", "args": '["bad", "0"]', "overwrite": "true"})
    r = api_any.post(f"{WF}/instances/{iid}/recover")
    assert r.status_code == 200 and r.json()["state"] == "RUNNING", r.text
    done = _wait(api_any, iid)
    assert done["state"] == "SUCCEEDED" and done["recoveries"] == 1
    runs = {s["baseTaskId"]: s["run"] for s in done["tasks"]}
    assert runs == {a: 1, bad: 2, side: 1, after: 1}  # a and side did not run again
    nothing = api_any.post(f"{WF}/instances/{iid}/recover")
    assert nothing.status_code == 200 and "nothing to recover" in nothing.json()["message"]


def test_pause_holds_the_next_steps_and_abort_stops_the_running_ones(api_any: Any) -> None:
    slow = _task(api_any, "slow", args=("slow", "1"))
    nxt = _task(api_any, "next", args=("next", "0"))
    long = _task(api_any, "long", args=("long", "60"))
    assert _define(api_any, [(slow, nxt)], name="p").status_code == 201
    iid = api_any.post(f"{WF}/definitions/p/v1/instances").json()["instanceId"]
    api_any.post(f"{WF}/instances/{iid}/initiate")
    deadline = time.monotonic() + 20  # paused once slow runs (a pause before would hold it)
    while api_any.get(f"{WF}/instances/{iid}").json()["tasks"][0]["run"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api_any.post(f"{WF}/instances/{iid}/pause").status_code == 200
    time.sleep(2.5)  # slow has ended; next must not have started
    inst = api_any.get(f"{WF}/instances/{iid}").json()
    assert inst["state"] == "PAUSED"
    assert {s["baseTaskId"]: s["state"] for s in inst["tasks"]} == {
        slow: "SUCCEEDED", nxt: "PENDING"}
    assert api_any.post(f"{WF}/instances/{iid}/pause").status_code == 409
    assert api_any.post(f"{WF}/instances/{iid}/resume").status_code == 200
    assert _wait(api_any, iid)["state"] == "SUCCEEDED"
    # abort
    assert _define(api_any, [(long, nxt)], name="q").status_code == 201
    iid = api_any.post(f"{WF}/definitions/q/v1/instances").json()["instanceId"]
    api_any.post(f"{WF}/instances/{iid}/initiate")
    deadline = time.monotonic() + 20
    while api_any.get(f"{WF}/instances/{iid}").json()["tasks"][0]["run"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert api_any.post(f"{WF}/instances/{iid}/abort").status_code == 200
    done = _wait(api_any, iid, timeout=20)
    assert done["state"] == "ABORTED"
    deadline = time.monotonic() + 20
    while (states := [s["state"] for s in api_any.get(f"{WF}/instances/{iid}").json()[
            "tasks"]]) != ["ABORTED", "PENDING"]:
        assert time.monotonic() < deadline, states
        time.sleep(0.1)
    history = api_any.get(f"{WF}/instances/{iid}/history").json()
    assert [h["state"] for h in history] == ["stopped"]


@pytest.mark.parametrize("edges, words", [
    ([], "at least one edge"),
    ([("T1", "T1")], "depends on itself"),
    ([("A", "B")], "is not a task id"),
])
def test_what_is_not_a_dag_is_refused_before_anything_is_saved(
        api_any: Any, edges: list[tuple[str, str]], words: str) -> None:
    r = _define(api_any, edges)
    assert r.status_code == 400, r.text
    assert words in r.json()["message"]
    assert api_any.get(f"{WF}/definitions").json() == []


def test_cycles_duplicates_and_unknown_tasks_are_refused(api_any: Any) -> None:
    a, b, c = (_task(api_any, n) for n in "abc")
    cycle = _define(api_any, [(a, b), (b, c), (c, a)])
    assert cycle.status_code == 400 and "cycle" in cycle.json()["message"]
    twice = _define(api_any, [(a, b), (a, b)])
    assert twice.status_code == 400 and "given twice" in twice.json()["message"]
    unknown = _define(api_any, [(a, "T999999")])
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "links[0].destination: no task T999999 (of this tenant)"
    assert _define(api_any, [(a, b)]).status_code == 201
    changed = _define(api_any, [(a, c)])
    assert changed.status_code == 409 and "new processVersion" in changed.json()["message"]
    assert api_any.get(f"{WF}/definitions/proc/nope").status_code == 404
    assert api_any.post(f"{WF}/definitions/proc/nope/instances").status_code == 404


def test_a_copied_task_deleted_while_it_runs_fails_its_step(api_any: Any) -> None:
    long = _task(api_any, "long", args=("long", "60"))
    after = _task(api_any, "after", args=("after", "0"))
    assert _define(api_any, [(long, after)], name="gone").status_code == 201
    inst = api_any.post(f"{WF}/definitions/gone/v1/instances").json()
    iid = inst["instanceId"]
    api_any.post(f"{WF}/instances/{iid}/initiate")
    deadline = time.monotonic() + 20
    while api_any.get(f"{WF}/instances/{iid}").json()["tasks"][0]["run"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    copy = _copy_of(inst, long)
    assert api_any.delete(f"{TS}/projects/wf/tasks/{copy}").status_code == 200
    done = _wait(api_any, iid, timeout=20)
    assert done["state"] == "FAILED"
    step = next(s for s in done["tasks"] if s["baseTaskId"] == long)
    # the delete stopped its run first; had the engine missed that, the run's absence
    # fails it the same way
    assert step["state"] == "FAILED", step
    assert step["reason"] in ("run 1: stopped (stopped)",
                              f"its task {copy} was deleted while it ran"), step
    after_step = next(s for s in done["tasks"] if s["baseTaskId"] == after)
    assert after_step["state"] == "PENDING"


def test_lists_come_a_page_at_a_time_oldest_first(api_any: Any) -> None:
    a, b = _task(api_any, "pa"), _task(api_any, "pb")
    for version in ("v1", "v2", "v3"):
        assert _define(api_any, [(a, b)], "paged", version).status_code in (200, 201)
    made = [api_any.post(f"{WF}/definitions/paged/v1/instances").json()["instanceId"]
            for _ in range(5)]
    r = api_any.get(f"{WF}/instances", params={"limit": 2, "offset": 1})
    assert [i["instanceId"] for i in r.json()] == made[1:3]
    assert [len(i["tasks"]) for i in r.json()] == [2, 2]  # each with its own steps
    assert [i["instanceId"] for i in api_any.get(
        f"{WF}/instances", params={"offset": 4}).json()] == made[4:]
    assert [d["processVersion"] for d in api_any.get(
        f"{WF}/definitions", params={"limit": 2, "offset": 1}).json()] == ["v2", "v3"]
    assert len(api_any.get(f"{WF}/instances").json()) == 5  # the default page holds them
    for params, field in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"),
                          ({"offset": -1}, "offset"), ({"limit": "x"}, "limit")):
        for what in ("instances", "definitions"):
            r = api_any.get(f"{WF}/{what}", params=params)
            assert r.status_code == 400 and r.json()["field"] == field, (what, params, r.text)

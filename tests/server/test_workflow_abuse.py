"""Workflow Service abuse, on both stores: every value a user shapes is bounded (a 400
naming the limit, tested at and one past it), hostile references are answered and never
reach the database as they are, and each bad input the issue lists has its clear 4xx."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pyconnector_server.tasks.bodies import NAME_MAX
from pyconnector_server.workflow import dag
from pyconnector_server.workflow.bodies import VERSION_MAX

TS = "/TaskService/v1.0"
WF = "/WorkflowService/v1.0"
FAILS = b"import sys; sys.exit(3)\n"
#: task ids nobody has (a fresh store's tasks are numbered from 1)
NOBODY = 900_000_000


@pytest.fixture
def api_any(make_app: Any, own_db_url: str) -> Any:
    return make_app(own_db_url)


def _task(api: Any, job: str, code: bytes = b"print(1)\n", headers: Any = None) -> str:
    h = headers or {}
    if api.get(f"{TS}/projects/wf", headers=h).status_code == 404:
        assert api.post(f"{TS}/projects", json={"projectName": "wf"}, headers=h).status_code \
            == 201
    r = api.post(f"{TS}/projects/wf/tasks", json={"jobName": job}, headers=h)
    assert r.status_code == 201, r.text
    tid = r.json()["jobId"]
    r = api.post(f"{TS}/projects/wf/tasks/{tid}/deploy", files={"file": ("main.py", code)},
                 data={"runTime": "py", "args": json.dumps([])}, headers=h)
    assert r.status_code == 200, r.text
    return str(tid)


def _define(api: Any, edges: list[tuple[str, str]], name: str = "proc",
            version: str = "v1", headers: Any = None) -> Any:
    return api.post(f"{WF}/definitions", headers=headers or {}, json={
        "processName": name, "processVersion": version,
        "links": [{"source": a, "destination": b} for a, b in edges]})


def _refused(r: Any, field: str, words: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and words in r.json()["message"], r.json()


def _wait(api: Any, iid: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (inst := api.get(f"{WF}/instances/{iid}").json())["state"] not in (
            "SUCCEEDED", "FAILED", "ABORTED"):
        assert time.monotonic() < deadline, inst
        time.sleep(0.1)
    return dict(inst)


# -- bounds -------------------------------------------------------------------------------
def test_names_and_versions_are_bounded_at_their_limits(api_any: Any) -> None:
    a, b = _task(api_any, "a"), _task(api_any, "b")
    name, version = "n" * NAME_MAX, "v" * VERSION_MAX
    r = _define(api_any, [(a, b)], name=name, version=version)
    assert r.status_code == 201, r.text
    _refused(_define(api_any, [(a, b)], name=name + "n", version=version),
             "processName", f"1 to {NAME_MAX} characters")
    _refused(_define(api_any, [(a, b)], name=name, version=version + "v"),
             "processVersion", f"1 to {VERSION_MAX} characters")
    # the same bounds on the paths and the filters
    assert api_any.get(f"{WF}/definitions/{name}/{version}").status_code == 200
    for path in (f"{WF}/definitions/{name}n/{version}", f"{WF}/definitions/{name}/{version}v"):
        r = api_any.get(path)
        assert r.status_code == 400 and "at most" in r.json()["message"], r.text
    assert len(api_any.get(f"{WF}/definitions", params={"processName": name}).json()) == 1
    _refused(api_any.get(f"{WF}/definitions", params={"processName": name + "n"}),
             "processName", f"at most {NAME_MAX}")
    assert api_any.get(f"{WF}/instances", params={"processName": name,
                                                  "processVersion": version}).json() == []
    _refused(api_any.get(f"{WF}/instances", params={"processVersion": version + "v"}),
             "processVersion", f"at most {VERSION_MAX}")
    assert api_any.get(f"{WF}/definitions").json()[0]["processName"] == name


def test_edge_and_task_counts_are_bounded_at_their_limits(api_any: Any) -> None:
    ids = [f"T{NOBODY + i}" for i in range(1, 200)]
    pairs = [(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids))]
    # at the edge limit the graph is checked, and only then its tasks looked up
    r = _define(api_any, pairs[:dag.MAX_EDGES])
    _refused(r, "links[0].source", f"no task {ids[0]}")
    r = _define(api_any, pairs[:dag.MAX_EDGES + 1])
    _refused(r, "links", f"at most {dag.MAX_EDGES}")
    chain = [f"T{NOBODY + i}" for i in range(1, dag.MAX_TASKS + 2)]
    at = list(zip(chain[:dag.MAX_TASKS - 1], chain[1:dag.MAX_TASKS], strict=True))
    _refused(_define(api_any, at), "links[0].source", "no task")
    past = list(zip(chain[:dag.MAX_TASKS], chain[1:], strict=True))
    _refused(_define(api_any, past), "links", f"at most {dag.MAX_TASKS} tasks, not "
             f"{dag.MAX_TASKS + 1}")
    assert api_any.get(f"{WF}/definitions").json() == []


def test_a_task_id_has_one_spelling(api_any: Any) -> None:
    """``T01`` was ``T1`` under another name: ``T01 → T1`` passed as an edge between two
    tasks, was saved as a self-edge, and its instance failed to prepare (a 500)."""
    a = _task(api_any, "a")
    for ref in (f"T0{a[1:]}", "T0", "T1234567890", "t1", "T 1", "T1.0"):
        r = _define(api_any, [(ref, a)])
        _refused(r, "links[0].source", "is not a task id")
    assert api_any.get(f"{WF}/definitions").json() == []


@pytest.mark.parametrize("ref", ["a%00b", "a%01", "%2E%2E", "a%5Cb", " x", "x" * 129])
def test_hostile_references_are_answered_not_crashed(api_any: Any, ref: str) -> None:
    """A NUL in a name reached PostgreSQL, which refused it: a 500."""
    for method, path in (("GET", f"{WF}/definitions/{ref}/v1"),
                         ("GET", f"{WF}/definitions/p/{ref}"),
                         ("DELETE", f"{WF}/definitions/{ref}/{ref}"),
                         ("POST", f"{WF}/definitions/p/{ref}/instances"),
                         ("GET", f"{WF}/instances/{ref}"),
                         ("POST", f"{WF}/instances/{ref}/recover")):
        r = api_any.client.request(method, path, headers=api_any.headers())
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
        assert r.json()["code"] == r.status_code


@pytest.mark.parametrize("param", ["processName", "processVersion"])
@pytest.mark.parametrize("value", ["a\x00b", "a\x1fb", "a/b", " padded"])
def test_filters_no_name_can_match_are_400_naming_them(api_any: Any, param: str,
                                                       value: str) -> None:
    r = api_any.get(f"{WF}/instances", params={param: value})
    _refused(r, param, "without control characters")
    if param == "processName":
        _refused(api_any.get(f"{WF}/definitions", params={param: value}), param,
                 "without control characters")


@pytest.mark.parametrize("ref", ["I", "I0x1", "I1234567890", "i1", "I-1", "I" + "9" * 16])
def test_instance_references_are_bounded(api_any: Any, ref: str) -> None:
    r = api_any.get(f"{WF}/instances/{ref}")
    assert r.status_code in (400, 404), r.text
    if len(ref) > 16:
        assert r.status_code == 400 and "at most 16" in r.json()["message"]


@pytest.mark.parametrize("body, field", [
    ({"recoveryMode": "yes"}, "recoveryMode"),
    ({"recoveryMode": 1}, "recoveryMode"),
    ({}, "recoveryMode"),
    ({"recoveryMode": True, "extra": 1}, "extra"),
])
def test_bad_recovery_bodies_are_400_naming_the_field(api_any: Any, body: Any,
                                                      field: str) -> None:
    a, b = _task(api_any, "a"), _task(api_any, "b")
    assert _define(api_any, [(a, b)]).status_code == 201
    r = api_any.put(f"{WF}/definitions/proc/v1/recovery", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert api_any.get(f"{WF}/definitions/proc/v1").json()["recoveryMode"] is False


# -- the issue's bad input ----------------------------------------------------------------
def test_each_bad_input_of_the_issue_is_a_clear_4xx(api_any: Any) -> None:
    a, b, c = (_task(api_any, n) for n in "abc")
    _refused(_define(api_any, [(a, b), (b, c), (c, a)]), "links", "cycle")
    _refused(_define(api_any, [(a, b), (b, b)]), "links", "depends on itself")
    _refused(_define(api_any, []), "links", "at least one edge")
    _refused(_define(api_any, [("start", "end")]), "links", "no task between start and end")
    other = {"x-api-key": api_any.new_key("wf-other-tenant")}
    theirs = _task(api_any, "theirs", headers=other)
    _refused(_define(api_any, [(a, theirs)]), "links[0].destination",
             f"no task {theirs} (of this tenant)")
    assert api_any.get(f"{WF}/definitions").json() == []
    assert _define(api_any, [(a, b)]).status_code == 201
    for path in (f"{WF}/definitions/proc/v2", f"{WF}/definitions/proc/v2/instances"):
        r = api_any.client.request("POST" if path.endswith("instances") else "GET", path,
                                   headers=api_any.headers())
        assert r.status_code == 404 and "'proc' version 'v2'" in r.json()["message"], r.text
    iid = api_any.post(f"{WF}/definitions/proc/v1/instances").json()["instanceId"]
    assert api_any.post(f"{WF}/instances/{iid}/initiate").status_code == 200
    again = api_any.post(f"{WF}/instances/{iid}/initiate")
    assert again.status_code == 409 and "only a PREPARED instance" in again.json()["message"]
    assert _wait(api_any, iid)["state"] == "SUCCEEDED"
    again = api_any.post(f"{WF}/instances/{iid}/initiate")
    assert again.status_code == 409 and "is SUCCEEDED" in again.json()["message"]
    # recover() without recovery mode, on a failed instance
    bad = _task(api_any, "bad", code=FAILS)
    assert _define(api_any, [(a, bad)], version="v3").status_code == 201
    iid = api_any.post(f"{WF}/definitions/proc/v3/instances").json()["instanceId"]
    api_any.post(f"{WF}/instances/{iid}/initiate")
    assert _wait(api_any, iid)["state"] == "FAILED"
    r = api_any.post(f"{WF}/instances/{iid}/recover")
    assert r.status_code == 409 and "recovery mode is off" in r.json()["message"]
    assert api_any.post(f"{WF}/instances/{iid}/initiate").status_code == 409
    assert api_any.get(f"{WF}/instances/{iid}").json()["recoveries"] == 0


def test_a_task_named_like_a_copy_does_not_stop_instances(api_any: Any) -> None:
    """A copy is named ``<task>-I<instance>-T<task id>``; a task of that name in the
    project made the copy's insert fail (a 500) for every instance of that number."""
    a, b = _task(api_any, "a"), _task(api_any, "b")
    assert _define(api_any, [(a, b)]).status_code == 201
    squatter = api_any.post(f"{TS}/projects/wf/tasks", json={"jobName": f"a-I1-{a}"})
    assert squatter.status_code == 201
    first = api_any.post(f"{WF}/definitions/proc/v1/instances")
    assert first.status_code == 201, first.text
    second = api_any.post(f"{WF}/definitions/proc/v1/instances")
    assert second.status_code == 201, second.text
    copies = [s["copiedTaskId"] for r in (first, second) for s in r.json()["tasks"]]
    names = [api_any.get(f"{TS}/projects/wf/tasks/{c}").json()["jobName"] for c in copies]
    assert len(set(copies)) == len(set(names)) == 4, names
    assert f"a-I1-{a}" not in names
    iid = first.json()["instanceId"]
    api_any.post(f"{WF}/instances/{iid}/initiate")
    assert _wait(api_any, iid)["state"] == "SUCCEEDED"


def test_instances_filter_by_version_alone(api_any: Any) -> None:
    """``processVersion`` without ``processName`` was ignored: every instance came."""
    a, b = _task(api_any, "a"), _task(api_any, "b")
    for name, version in (("p", "v1"), ("p", "v2"), ("q", "v2")):
        assert _define(api_any, [(a, b)], name=name, version=version).status_code == 201
        assert api_any.post(f"{WF}/definitions/{name}/{version}/instances").status_code == 201
    got = api_any.get(f"{WF}/instances", params={"processVersion": "v2"}).json()
    assert sorted((i["processName"], i["processVersion"]) for i in got) == [
        ("p", "v2"), ("q", "v2")]
    got = api_any.get(f"{WF}/instances", params={"processName": "p",
                                                 "processVersion": "v2"}).json()
    assert [(i["processName"], i["processVersion"]) for i in got] == [("p", "v2")]


# -- a client gone in the middle of an operation of several steps (gone_after: conftest) ------
def _copies(api: Any) -> list[str]:
    return [t["jobId"] for t in api.get(f"{TS}/projects/wf/tasks").json()
            if "-I" in t["jobName"]]


def test_a_prepare_whose_client_left_makes_a_whole_instance(api_any: Any,
                                                            gone_after: Any) -> None:
    """The copies' files are copied after their rows: a client gone in between left
    copies without a deploy, and the instance's steps failed."""
    a, b = _task(api_any, "a"), _task(api_any, "b")
    assert _define(api_any, [(a, b)]).status_code == 201
    gone_after(api_any.app.state.workflow.store, "prepare")
    api_any.post(f"{WF}/definitions/proc/v1/instances")
    [inst] = api_any.get(f"{WF}/instances").json()
    assert api_any.post(f"{WF}/instances/{inst['instanceId']}/initiate").status_code == 200
    done = _wait(api_any, inst["instanceId"])
    assert done["state"] == "SUCCEEDED", done


@pytest.mark.parametrize("what", ["definition", "instance"])
def test_a_delete_whose_client_left_leaves_no_copies(api_any: Any, gone_after: Any,
                                                     what: str) -> None:
    a, b = _task(api_any, "a"), _task(api_any, "b")
    assert _define(api_any, [(a, b)]).status_code == 201
    iid = api_any.post(f"{WF}/definitions/proc/v1/instances").json()["instanceId"]
    assert len(_copies(api_any)) == 2
    store = api_any.app.state.workflow.store
    gone_after(store, f"delete_{what}")
    api_any.delete(f"{WF}/definitions/proc/v1" if what == "definition"
                   else f"{WF}/instances/{iid}")
    assert api_any.get(f"{WF}/instances/{iid}").status_code == 404
    assert _copies(api_any) == []


def test_an_abort_whose_client_left_stops_the_running_steps(api_any: Any,
                                                            gone_after: Any) -> None:
    long = _task(api_any, "long", code=b"import time; time.sleep(60)\n")
    after = _task(api_any, "after")
    assert _define(api_any, [(long, after)]).status_code == 201
    iid = api_any.post(f"{WF}/definitions/proc/v1/instances").json()["instanceId"]
    api_any.post(f"{WF}/instances/{iid}/initiate")
    deadline = time.monotonic() + 30
    while api_any.get(f"{WF}/instances/{iid}").json()["tasks"][0]["run"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    gone_after(api_any.app.state.workflow.store, "set_state")
    api_any.post(f"{WF}/instances/{iid}/abort")
    copy = api_any.get(f"{WF}/instances/{iid}").json()["tasks"][0]["copiedTaskId"]
    deadline = time.monotonic() + 20
    while (run := api_any.get(f"{TS}/projects/wf/tasks/{copy}/runs/1").json())[
            "state"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the aborted instance's step still runs"
        time.sleep(0.1)
    assert run["state"] == "stopped", run


def test_a_step_is_claimed_only_while_its_instance_runs(api_any: Any) -> None:
    """The engine read an instance RUNNING, then claimed and started its steps: an abort
    or pause in between left a step started in an aborted or paused instance (one the
    abort had not seen to stop). The claim now checks the instance's state too."""
    a, b = _task(api_any, "a"), _task(api_any, "b")
    assert _define(api_any, [(a, b)]).status_code == 201
    iid = api_any.post(f"{WF}/definitions/proc/v1/instances").json()["instanceId"]
    store = api_any.app.state.workflow.store
    _, _, steps = store.steps(int(iid[1:]))
    assert not store.claim(steps[0].id)  # PREPARED
    assert api_any.post(f"{WF}/instances/{iid}/abort").status_code == 200
    assert not store.claim(steps[0].id)  # ABORTED
    _, _, steps = store.steps(int(iid[1:]))
    assert [s.state for s in steps] == ["PENDING", "PENDING"]
    assert api_any.get(f"{TS}/projects/wf/tasks/T{steps[0].task_id}/runs").json() == []

"""Tenant isolation on every Workflow Service operation: another tenant's definitions,
instances, mappings and histories look like they do not exist (404, the answer for a
name nobody has) to that tenant's admin and application keys alike, and nothing of them
changes; a definition cannot name another tenant's tasks; the same names in two tenants
stay apart. The operations come from the OpenAPI document, so a new route is covered the
day it lands."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from pyconnector_server.auth import create_api_key

TS = "/TaskService/v1.0"
WF = "/WorkflowService/v1.0"
CODE = b"open('out.out', 'w').write('secret')\nprint('secret')\n"
BODIES: dict[str, Any] = {  # a valid body per operation: the 404 is about ownership
    "recovery": {"recoveryMode": True},
    "schedule": {"cron": "*/5 * * * *"},
}


@pytest.fixture
def api_any(make_app: Any, own_db_url: str) -> Any:
    """An app on each store; on PostgreSQL in a schema of its own (another process's
    engine and scheduler would take part)."""
    return make_app(own_db_url)


def _task(api: Any, h: dict[str, str], job: str) -> str:
    if api.get(f"{TS}/projects/p1", headers=h).status_code == 404:
        assert api.post(f"{TS}/projects", json={"projectName": "p1"}, headers=h)\
            .status_code == 201
    tid = api.post(f"{TS}/projects/p1/tasks", json={"jobName": job}, headers=h).json()["jobId"]
    r = api.post(f"{TS}/projects/p1/tasks/{tid}/deploy", files={"file": ("main.py", CODE)},
                 data={"runTime": "py"}, headers=h)
    assert r.status_code == 200, r.text
    return str(tid)


def _wait(api: Any, h: dict[str, str], iid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (inst := api.get(f"{WF}/instances/{iid}", headers=h).json())["state"] not in (
            "SUCCEEDED", "FAILED", "ABORTED"):
        assert time.monotonic() < deadline, inst
        time.sleep(0.1)
    return dict(inst)


def _setup(api: Any, h: dict[str, str]) -> dict[str, str]:
    """Definition proc/v1 (two tasks), instance ``ran`` (succeeded: a history, outputs)
    and instance ``prepared``."""
    a, b = _task(api, h, "a"), _task(api, h, "b")
    r = api.post(f"{WF}/definitions", headers=h, json={
        "processName": "proc", "processVersion": "v1",
        "links": [{"source": a, "destination": b}]})
    assert r.status_code == 201, r.text
    ran = api.post(f"{WF}/definitions/proc/v1/instances", headers=h).json()["instanceId"]
    assert api.post(f"{WF}/instances/{ran}/initiate", headers=h).status_code == 200
    assert _wait(api, h, ran)["state"] == "SUCCEEDED"
    prepared = api.post(f"{WF}/definitions/proc/v1/instances", headers=h).json()["instanceId"]
    return {"a": a, "b": b, "ran": ran, "prepared": prepared}


def _snapshot(api: Any, h: dict[str, str], objs: dict[str, str]) -> Any:
    return (api.get(f"{WF}/definitions", headers=h).json(),
            api.get(f"{WF}/instances", headers=h).json(),
            [api.get(f"{WF}/instances/{objs[i]}/history", headers=h).json()
             for i in ("ran", "prepared")],
            api.get(f"{TS}/projects/p1/tasks", headers=h).json())


def _operations(api: Any) -> list[tuple[str, str]]:
    spec = api.client.get("/openapi.json").json()
    ops = [(method.upper(), path) for path, methods in spec["paths"].items()
           if path.startswith(WF) and "{" in path for method in methods]
    assert len(ops) >= 12, ops  # every operation on a definition or an instance
    return ops


@pytest.fixture
def two(api_any: Any) -> Any:
    a = api_any.headers()
    tenant_b = f"wf-b-{uuid.uuid4().hex[:8]}"
    b_admin = {"x-api-key": create_api_key(api_any.app.state.db, tenant_b)}
    b_app = {"x-api-key": create_api_key(api_any.app.state.db, tenant_b, role="app")}
    return api_any, a, (b_admin, b_app), _setup(api_any, a)


def _request(api: Any, method: str, template: str, h: dict[str, str], name: str,
             version: str, instance: str) -> Any:
    path = (template.replace("{name}", name).replace("{version}", version)
            .replace("{instance}", instance))
    last = template.rstrip("/").rsplit("/", 1)[-1]
    kw = {"json": BODIES[last]} if method in ("POST", "PUT") and last in BODIES else {}
    return path, api.client.request(method, path, headers=h, **kw)


def test_every_operation_on_another_tenants_objects_is_404(two: Any) -> None:
    api, a, keys, objs = two
    before = _snapshot(api, a, objs)
    for b in keys:
        for method, template in _operations(api):
            for instance in (objs["ran"], objs["prepared"]):
                path, r = _request(api, method, template, b, "proc", "v1", instance)
                assert r.status_code == 404, (method, path, r.status_code, r.text)
                assert r.json()["code"] == 404 and "secret" not in r.text
                assert objs["a"] not in r.text and objs["b"] not in r.text
                _, nobody = _request(api, method, template, b, "nobody", "v9", "I999999")
                assert nobody.status_code == 404  # as for a name nobody has
                assert set(r.json()) == set(nobody.json())
        # and the listings show none of it
        assert api.get(f"{WF}/definitions", headers=b).json() == []
        assert api.get(f"{WF}/instances", headers=b).json() == []
        assert api.get(f"{WF}/instances", headers=b, params={"processName": "proc"}).json() \
            == []
    assert _snapshot(api, a, objs) == before
    ran = api.get(f"{WF}/instances/{objs['ran']}", headers=a).json()
    assert ran["state"] == "SUCCEEDED" and ran["recoveries"] == 0
    assert api.get(f"{WF}/definitions/proc/v1", headers=a).json()["recoveryMode"] is False


def test_a_definition_naming_another_tenants_tasks_is_refused(two: Any) -> None:
    api, a, (b, _app), objs = two
    mine = _task(api, b, "mine")
    copied = api.get(f"{WF}/instances/{objs['ran']}/mapping", headers=a).json()["taskIds"]
    for theirs in (objs["a"], copied[0]["copiedTaskId"]):
        for links in ([{"source": mine, "destination": theirs}],
                      [{"source": "start", "destination": theirs}]):
            r = api.post(f"{WF}/definitions", headers=b, json={
                "processName": "steal", "processVersion": "v1", "links": links})
            assert r.status_code == 400, r.text
            assert r.json()["message"].endswith(f"no task {theirs} (of this tenant)")
    assert api.get(f"{WF}/definitions", headers=b).json() == []
    # a's own task ids, unknown to b, and b's to a, answer alike
    r = api.post(f"{WF}/definitions", headers=a, json={
        "processName": "steal", "processVersion": "v1",
        "links": [{"source": objs["a"], "destination": mine}]})
    assert r.status_code == 400 and f"no task {mine}" in r.json()["message"]


def test_same_names_in_two_tenants_stay_apart(two: Any) -> None:
    api, a, (b, _app), objs = two
    theirs = _setup(api, b)  # also proc/v1, tasks a and b in project p1
    assert theirs["ran"] != objs["ran"]
    for h, mine, other in ((a, objs, theirs), (b, theirs, objs)):
        got = api.get(f"{WF}/definitions/proc/v1", headers=h).json()
        assert got["tasks"] == [mine["a"], mine["b"]]
        assert [i["instanceId"] for i in api.get(f"{WF}/instances", headers=h).json()] == [
            mine["ran"], mine["prepared"]]
        assert api.get(f"{WF}/instances/{other['ran']}", headers=h).status_code == 404
    # b's recovery mode, schedule and delete leave a's alone
    assert api.put(f"{WF}/definitions/proc/v1/recovery", headers=b,
                   json={"recoveryMode": True}).status_code == 200
    assert api.get(f"{WF}/definitions/proc/v1", headers=a).json()["recoveryMode"] is False
    assert api.delete(f"{WF}/definitions/proc/v1", headers=b).status_code == 200
    assert api.get(f"{WF}/definitions/proc/v1", headers=b).status_code == 404
    assert api.get(f"{WF}/definitions/proc/v1", headers=a).status_code == 200
    assert api.get(f"{WF}/instances/{objs['ran']}", headers=a).json()["state"] == "SUCCEEDED"
    mapping = api.get(f"{WF}/instances/{objs['ran']}/mapping", headers=a).json()["taskIds"]
    for m in mapping:  # a's copies are still there
        assert api.get(f"{TS}/projects/p1/tasks/{m['copiedTaskId']}", headers=a)\
            .status_code == 200

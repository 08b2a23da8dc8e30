"""Tenant isolation on every Task Service operation: another tenant's projects, tasks,
runs, logs and outputs look like they do not exist (404, the answer for a name nobody
has), by id or by name, in paths and in bodies; and nothing of them changes. The
operations come from the OpenAPI document, so a new route is covered the day it lands."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

TS = "/TaskService/v1.0"
CODE = b"open('out.out', 'w').write('secret')\nprint('secret')\n"
BODIES: dict[str, Any] = {  # a valid body per operation: the 404 is about ownership
    "schedule": {"cron": "*/5 * * * *"},
    "copy": {"jobName": "stolen"},
    "links": {"externalProjectIds": [], "externalTaskIds": ["j1"], "fileNames": ["out.out"]},
    "tasks": {"jobName": "planted"},
}


@pytest.fixture
def api_any(make_app: Any, own_db_url: str) -> Any:
    """An app on each store; on PostgreSQL in a schema of its own: another platform
    process on the session's schema would fire these tasks' slots (its scheduler sees
    every task of its database) and could not run them."""
    return make_app(own_db_url)

def _setup(api: Any, headers: dict[str, str]) -> dict[str, Any]:
    """A project with a deployed task that ran once and made ``out.out``."""
    api.post(f"{TS}/projects", json={"projectName": "p1"}, headers=headers)
    t = api.post(f"{TS}/projects/p1/tasks", json={"jobName": "j1"}, headers=headers).json()
    path = f"{TS}/projects/{t['projectId']}/tasks/{t['jobId']}"
    r = api.post(f"{path}/deploy", files={"file": ("main.py", CODE)}, data={"runTime": "py"},
                 headers=headers)
    assert r.status_code == 200, r.text
    api.post(f"{path}/start", headers=headers)
    deadline = time.monotonic() + 30
    while api.get(f"{path}/runs/1", headers=headers).json()["state"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return t


def _snapshot(api: Any, headers: dict[str, str], t: dict[str, Any]) -> Any:
    path = f"{TS}/projects/{t['projectId']}/tasks/{t['jobId']}"
    return (api.get(f"{TS}/projects", headers=headers).json(),
            api.get(f"{TS}/projects/{t['projectId']}/tasks", headers=headers).json(),
            api.get(f"{path}/runs", headers=headers).json(),
            api.get(f"{path}/runs/1/outputs", headers=headers).json())


def _operations(api: Any) -> list[tuple[str, str]]:
    spec = api.client.get("/openapi.json").json()
    ops = [(method.upper(), path) for path, methods in spec["paths"].items()
           if path.startswith(TS) and "{project}" in path for method in methods]
    assert len(ops) >= 18, ops  # every operation on a project or below it
    return ops


@pytest.fixture
def two(api_any: Any) -> Any:
    a = api_any.headers()
    b = {"x-api-key": api_any.new_key(f"tasks-b-{uuid.uuid4().hex[:8]}")}
    ta = _setup(api_any, a)
    return api_any, a, b, ta


@pytest.mark.parametrize("by", ["id", "name"])
def test_every_operation_on_another_tenants_objects_is_404(two: Any, by: str) -> None:
    api, a, b, ta = two
    before = _snapshot(api, a, ta)
    project = ta["projectId"] if by == "id" else "p1"
    job = ta["jobId"] if by == "id" else "j1"
    for method, template in _operations(api):
        path = (template.replace("{project}", project).replace("{job}", job)
                .replace("{number}", "1").replace("{path}", "out.out"))
        last = template.rstrip("/").rsplit("/", 1)[-1]
        kw: dict[str, Any] = {}
        if last == "deploy":
            kw = {"files": {"file": ("main.py", b"print(1)")},
                  "data": {"runTime": "py", "overwrite": "true"}}
        elif method in ("POST", "PUT") and last in BODIES:
            kw = {"json": BODIES[last]}
        r = api.client.request(method, path, headers=b, **kw)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["code"] == 404 and "secret" not in r.text
        nobody = api.client.request(method, path.replace(job, "nobody-has-it", 1)
                                    .replace(project, "nobody-has-it", 1), headers=b, **kw)
        assert nobody.status_code == 404  # the same answer as for a name nobody has
    assert _snapshot(api, a, ta) == before


def test_bodies_naming_another_tenants_objects_are_404(two: Any) -> None:
    api, a, b, ta = two
    tb = _setup(api, b)
    mine = f"{TS}/projects/{tb['projectId']}/tasks/{tb['jobId']}"
    r = api.put(f"{mine}/links", headers=b, json={
        "externalProjectIds": [ta["projectId"]], "externalTaskIds": [ta["jobId"]],
        "fileNames": ["out.out"]})
    assert r.status_code == 404, r.text
    r = api.post(f"{mine}/copy", headers=b, json={"projectId": ta["projectId"]})
    assert r.status_code == 404, r.text
    assert api.get(f"{TS}/projects", headers=b).json()[0]["projectId"] == tb["projectId"]
    assert [p["projectName"] for p in api.get(f"{TS}/projects", headers=a).json()] == ["p1"]


def test_same_names_in_two_tenants_stay_apart(two: Any) -> None:
    api, a, b, ta = two
    tb = _setup(api, b)  # also "p1"/"j1"
    assert tb["projectId"] != ta["projectId"]
    for headers, mine in ((a, ta), (b, tb)):
        got = api.get(f"{TS}/projects/p1/tasks/j1", headers=headers).json()
        assert got["jobId"] == mine["jobId"]
    assert api.delete(f"{TS}/projects/p1", headers=b).status_code == 200
    assert api.get(f"{TS}/projects/p1/tasks/j1", headers=a).json()["status"] == "COMPLETED"


@pytest.mark.parametrize("ref", ["a%00b", "a%2Fb", "x" * 129, "%2E%2E", "P" + "9" * 30, "T-1"])
def test_hostile_references_are_answered_not_crashed(two: Any, ref: str) -> None:
    api, a, _b, _ta = two
    for path in (f"{TS}/projects/{ref}", f"{TS}/projects/p1/tasks/{ref}",
                 f"{TS}/projects/p1/tasks/j1/runs/1/outputs/{ref}"):
        r = api.get(path, headers=a)
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
        assert r.json()["code"] == r.status_code


@pytest.mark.parametrize(("body", "field"), [
    ({"projectName": ""}, "projectName"),
    ({"projectName": "x" * 129}, "projectName"),
    ({"projectName": "a/b"}, "projectName"),
    ({"projectName": "a\x00"}, "projectName"),
    ({"projectName": " padded"}, "projectName"),
    ({"projectName": "ok", "colour": "red"}, "colour"),
])
def test_bad_project_bodies_are_400_naming_the_field_and_store_nothing(
        api_any: Any, body: dict[str, Any], field: str) -> None:
    r = api_any.post(f"{TS}/projects", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert api_any.get(f"{TS}/projects").json() == []

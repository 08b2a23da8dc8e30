"""The Task Service's API in-process, on both stores: projects and tasks by id or name,
deploys (and what a deploy refuses), runs with their logs and outputs, schedules, copies,
links, and the state a task is in after each step."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import pytest

TS = "/TaskService/v1.0"
HELLO = b"import sys\nprint('hello', *sys.argv[1:])\nopen('out.out', 'w').write('42')\n"


@pytest.fixture
def api_any(make_app: Any, own_db_url: str) -> Any:
    """An app on each store; on PostgreSQL in a schema of its own: another platform
    process on the session's schema would fire these tasks' slots (its scheduler sees
    every task of its database) and could not run them."""
    return make_app(own_db_url)

def _zip(**files: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name.replace("__", "/"), data)
    return buf.getvalue()


def _task(api: Any, project: str = "p1", job: str = "j1", kind: str = "task") -> dict[str, Any]:
    if api.get(f"{TS}/projects/{project}").status_code == 404:
        assert api.post(f"{TS}/projects", json={"projectName": project}).status_code == 201
    r = api.post(f"{TS}/projects/{project}/tasks", json={"jobName": job, "type": kind})
    assert r.status_code == 201, r.text
    return r.json()


def _path(t: dict[str, Any]) -> str:
    return f"{TS}/projects/{t['projectId']}/tasks/{t['jobId']}"


def _deploy(api: Any, path: str, code: bytes = HELLO, name: str = "main.py",
            **form: Any) -> Any:
    files: dict[str, Any] = {"file": (name, code)}
    for key in ("dependencies", "inputs"):
        if key in form:
            files[key] = (f"{key}.zip", form.pop(key))
    return api.post(f"{path}/deploy", files=files, data={"runTime": "py", **form})


def _wait(api: Any, path: str, number: int = 1, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = api.get(f"{path}/runs/{number}").json()
        if run.get("endedOn"):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


def test_projects_and_tasks_by_id_or_name(api_any: Any) -> None:
    t = _task(api_any)
    assert t["jobId"][0] == "T" and t["projectId"][0] == "P" and t["status"] == "CREATED"
    for p in (t["projectId"], "p1"):
        for j in (t["jobId"], "j1"):
            assert api_any.get(f"{TS}/projects/{p}/tasks/{j}").json()["jobId"] == t["jobId"]
    assert api_any.post(f"{TS}/projects", json={"projectName": "p1"}).status_code == 409
    r = api_any.post(f"{TS}/projects/p1/tasks", json={"jobName": "j1"})
    assert r.status_code == 409 and r.json()["field"] == "jobName"
    assert api_any.get(f"{TS}/projects/P999999").status_code == 404
    assert api_any.get(f"{TS}/projects/p1/tasks/T999999").status_code == 404
    listed = api_any.get(f"{TS}/projects/p1/tasks", params={"jobName": "j1"}).json()
    assert [x["jobId"] for x in listed] == [t["jobId"]]


def test_deploy_run_log_and_outputs(api_any: Any) -> None:
    path = _path(_task(api_any))
    r = _deploy(api_any, path, args='["a", "b"]',
                dependencies=_zip(lib__helper__py=b"X = 1\n"),
                inputs=_zip(data__csv=b"x\n1\n"))
    assert r.status_code == 200 and r.json()["status"] == "DEPLOYED", r.text
    started = api_any.post(f"{path}/start").json()
    assert started["run"] == 1 and started["status"] == "RUNNING"
    run = _wait(api_any, path)
    assert (run["state"], run["exitCode"], run["trigger"]) == ("succeeded", 0, "start"), run
    assert api_any.get(f"{path}/runs/1/log").text == "hello a b\n"
    assert api_any.get(f"{path}/runs/1/outputs").json() == [{"name": "out.out", "size": 2}]
    assert api_any.get(f"{path}/runs/1/outputs/out.out").content == b"42"
    assert api_any.get(f"{path}/runs/1/outputs/../../../bundle/main.py").status_code == 404
    assert api_any.get(path).json()["status"] == "COMPLETED"


def test_a_redeploy_needs_overwrite(api_any: Any) -> None:
    path = _path(_task(api_any))
    assert _deploy(api_any, path).status_code == 200
    r = _deploy(api_any, path)
    assert r.status_code == 409 and r.json()["field"] == "overwrite"
    assert _deploy(api_any, path, overwrite="true").status_code == 200


@pytest.mark.parametrize(("form", "field"), [
    ({"runTime": "cobol"}, "runTime"),
    ({"name": "main.js"}, "filename"),
    ({"name": "-c.py"}, "filename"),
    ({"args": "not json"}, "args"),
    ({"args": '["a", 1]'}, "args"),
    ({"dependencies": _zip(**{"..__evil.py": b"x"})}, "dependencies"),
    ({"inputs": b"not a zip"}, "inputs"),
])
def test_a_bad_deploy_is_a_400_naming_the_field_and_deploys_nothing(
        api_any: Any, form: dict[str, Any], field: str) -> None:
    path = _path(_task(api_any))
    form = dict(form)
    name = form.pop("name", "main.py")
    files: dict[str, Any] = {"file": (name, HELLO)}
    for key in ("dependencies", "inputs"):
        if key in form:
            files[key] = (f"{key}.zip", form.pop(key))
    r = api_any.post(f"{path}/deploy", files=files, data={"runTime": "py", **form})
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    task = api_any.get(path).json()
    assert (task["status"], task["runTime"]) == ("CREATED", None)
    assert api_any.post(f"{path}/start").status_code == 409  # nothing to run


def test_a_failing_task_reports_its_exit_code_and_stderr(api_any: Any) -> None:
    path = _path(_task(api_any))
    _deploy(api_any, path, code=b"import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    api_any.post(f"{path}/start")
    run = _wait(api_any, path)
    assert (run["state"], run["exitCode"]) == ("failed", 3), run
    assert api_any.get(f"{path}/runs/1/log", params={"stream": "stderr"}).text == "boom\n"
    assert api_any.get(path).json()["status"] == "FAILED"


def test_stop_pause_resume_and_delete_while_running(api_any: Any) -> None:
    path = _path(_task(api_any))
    _deploy(api_any, path, code=b"import time\nfor i in range(600):\n"
            b"    print(i, flush=True)\n    time.sleep(0.05)\n")
    api_any.post(f"{path}/start")
    deadline = time.monotonic() + 20
    while api_any.get(f"{path}/runs/1").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api_any.post(f"{path}/pause").json()["status"] == "PAUSED"
    assert api_any.get(f"{path}/runs/1").json()["state"] == "paused"
    size = len(api_any.get(f"{path}/runs/1/log").text)
    time.sleep(0.5)
    assert len(api_any.get(f"{path}/runs/1/log").text) == size  # no output while paused
    assert api_any.post(f"{path}/resume").json()["status"] == "RUNNING"
    assert api_any.post(f"{path}/stop").json()["code"] == 200
    assert _wait(api_any, path)["state"] == "stopped"
    api_any.post(f"{path}/start")
    assert api_any.delete(path).status_code == 200  # stops run 2 first
    assert api_any.get(path).status_code == 404


def test_a_delayed_time_in_the_past_runs_at_once_with_a_warning(api_any: Any) -> None:
    path = _path(_task(api_any, kind="delayed"))
    _deploy(api_any, path)
    r = api_any.put(f"{path}/schedule", json={"delayedTime": "15-07-2019 12:35:56.789 IST",
                                               "timeZone": "IST"})
    assert r.status_code == 200 and "in the past" in r.json()["warning"], r.text
    run = _wait(api_any, path)
    assert (run["state"], run["trigger"]) == ("succeeded", "schedule")
    task = api_any.get(path).json()
    assert task["schedule"]["nextRun"] is None and task["status"] == "COMPLETED"
    assert len(api_any.get(f"{path}/runs").json()) == 1  # once


def test_a_recurrent_schedule_and_its_bad_values(api_any: Any) -> None:
    path = _path(_task(api_any, kind="recurrent"))
    _deploy(api_any, path)
    r = api_any.put(f"{path}/schedule", json={"cronPatternType": "fixed", "hour": "4",
                                               "day": "6", "timeZone": "IST",
                                               "recurrenceLimit": 3})
    assert r.status_code == 200, r.text
    task = api_any.get(path).json()
    assert task["schedule"]["cron"] == "0 4 6 * *" and task["status"] == "SCHEDULED"
    assert task["schedule"]["nextRun"].endswith("UTC")
    for body, field in (({"cronPatternType": "fixed", "hour": "24"}, "hour"),
                        ({"cronPatternType": "weird"}, "cronPatternType"),
                        ({"cron": "bad"}, "cron"),
                        ({"cronPatternType": "fixed", "hour": "4", "recurrenceLimit": -1},
                         "recurrenceLimit"),
                        ({"delayedTime": "31-02-2019 10:00:00"}, "delayedTime"),
                        ({"delayedTime": "15-07-2019 12:35:56", "timeZone": "Mars/Base"},
                         "timeZone"),
                        ({}, "delayedTime"),
                        ({"colour": "red"}, "colour")):
        r = api_any.put(f"{path}/schedule", json=body)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.text)
    assert api_any.get(path).json()["schedule"]["cron"] == "0 4 6 * *"  # unchanged


def test_copy_and_links_between_tasks(api_any: Any) -> None:
    p, c = _task(api_any, job="producer"), _task(api_any, job="consumer")
    producer, consumer = _path(p), _path(c)
    _deploy(api_any, producer)
    _deploy(api_any, consumer, code=b"print(open('input/out.out').read())\n")
    r = api_any.put(f"{consumer}/links", json={"externalProjectIds": [p["projectId"]],
                                               "externalTaskIds": [p["jobId"]],
                                               "fileNames": ["out.out"]})
    assert r.status_code == 200 and r.json()["links"][0]["fileName"] == "out.out", r.text
    api_any.post(f"{consumer}/start")  # the producer has not run: no file to take
    run = _wait(api_any, consumer)
    assert run["state"] == "failed" and "no successful run" in run["reason"], run
    api_any.post(f"{producer}/start")
    assert _wait(api_any, producer)["state"] == "succeeded"
    api_any.post(f"{consumer}/start")
    assert _wait(api_any, consumer, 2)["state"] == "succeeded"
    assert api_any.get(f"{consumer}/runs/2/log").text == "42\n"
    copy = api_any.post(f"{consumer}/copy", json={"jobName": "consumer2"})
    assert copy.status_code == 201 and copy.json()["status"] == "DEPLOYED", copy.text
    assert copy.json()["links"] == api_any.get(consumer).json()["links"]
    api_any.post(f"{TS}/projects/p1/tasks/consumer2/start")
    assert _wait(api_any, f"{TS}/projects/p1/tasks/consumer2")["state"] == "succeeded"


def test_another_tenant_sees_nothing(api_any: Any) -> None:
    path = _path(_task(api_any))
    _deploy(api_any, path)
    other = {"x-api-key": api_any.new_key(f"tasks-other-{time.monotonic_ns()}")}
    assert api_any.get(f"{TS}/projects", headers=other).json() == []
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/start"),
                           ("POST", "/stop"), ("GET", "/runs"), ("PUT", "/links")):
        r = api_any.client.request(method, path + suffix, headers=other,
                                   json={"externalTaskIds": ["j1"], "fileNames": ["x"],
                                         "externalProjectIds": []})
        assert r.status_code == 404, (method, suffix, r.text)
    assert api_any.delete(f"{TS}/projects/p1", headers=other).status_code == 404
    assert api_any.get(path).json()["status"] == "DEPLOYED"  # untouched


def test_deleting_a_project_stops_everything_in_it(api_any: Any) -> None:
    long, later = _path(_task(api_any, job="long")), _path(
        _task(api_any, job="later", kind="recurrent"))
    _deploy(api_any, long, code=b"import time\ntime.sleep(60)\n")
    _deploy(api_any, later)
    api_any.put(f"{later}/schedule", json={"cron": "* * * * *"})
    api_any.post(f"{long}/start")
    r = api_any.delete(f"{TS}/projects/p1")
    assert r.status_code == 200 and "2 task(s)" in r.json()["message"], r.text
    assert api_any.get(f"{TS}/projects").json() == []
    runner = api_any.app.state.tasks
    assert runner.active == {}  # the long run was stopped, not left behind


def test_ids_are_never_reused(api: Any) -> None:
    """A script may hold an id (or a link names a task by it): after a delete, the next
    project and task get new ids, on SQLite too."""
    first = _task(api, project="gone", job="old")
    assert api.delete(f"{TS}/projects/gone").status_code == 200
    second = _task(api, project="new", job="new")
    assert second["projectId"] != first["projectId"] and second["jobId"] != first["jobId"]
    assert api.get(_path(first)).status_code == 404

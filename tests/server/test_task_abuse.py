"""The Task Service against hostile clients, in-process on both stores: hostile names in
every place a client names something (projects, tasks, deploy files, runtime arguments,
linked files), zips of a great many tiny entries, deploys over the size limit, and a
client that goes away while its deploy builds. Each is a 400 naming the field (or a 413
naming the limit), or is accepted safely; never a 500, never a file outside the task's
directory, never a task left half-deployed. The abuse a real socket needs (a client
that disconnects mid-upload, an oversize form sent chunked) is in
tests/e2e/test_task_upload_abuse.py."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pyconnector_server import cancel
from pyconnector_server.tasks import bundle, routes

TS = "/TaskService/v1.0"
CODE = b"print('hi')\n"
BOUNDARY = "abuse-boundary"


@pytest.fixture
def api_any(make_app: Any, own_db_url: str) -> Any:
    """An app on each store (PostgreSQL in a schema of its own), deploys of at most 1 MiB."""
    return make_app(own_db_url, task_bundle_mb=1)


def _task(api: Any, job: str = "j1") -> str:
    if api.get(f"{TS}/projects/p1").status_code == 404:
        assert api.post(f"{TS}/projects", json={"projectName": "p1"}).status_code == 201
    r = api.post(f"{TS}/projects/p1/tasks", json={"jobName": job})
    assert r.status_code == 201, r.text
    return f"{TS}/projects/p1/tasks/{r.json()['jobId']}"


def _form(*parts: tuple[bytes, bytes | None, bytes]) -> tuple[bytes, dict[str, str]]:
    """A multipart form written byte by byte (an HTTP client would escape the hostile
    bytes of a file name): (field, file name or None, content) parts."""
    out = b""
    for field, filename, data in parts:
        out += f"--{BOUNDARY}\r\n".encode() + b'Content-Disposition: form-data; name="' + field
        out += b'"' + (b'; filename="' + filename + b'"' if filename is not None else b"")
        out += b"\r\n\r\n" + data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return out, {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def _deploy(api: Any, path: str, filename: bytes = b"main.py", code: bytes = CODE,
            *extra: tuple[bytes, bytes | None, bytes]) -> Any:
    body, headers = _form((b"file", filename, code), (b"runTime", None, b"py"),
                          (b"overwrite", None, b"true"), *extra)
    return api.post(f"{path}/deploy", content=body, headers=headers)


def _files(api: Any) -> set[Path]:
    """Every file of the platform's data dir but the database's."""
    root = api.app.state.settings.data_path
    return {p.relative_to(root) for p in root.rglob("*")
            if p.is_file() and not p.name.startswith("pyconnector.db")}


def _refused(r: Any, field: str, status: int = 400) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == status and r.json().get("field") == field, r.text


# -- names --------------------------------------------------------------------------------
HOSTILE_NAMES = ["a\x00b", "x" * 129, "a/b", "..\\up", "bell\x07", "tab\tin", "\x7f", " pad",
                 "", "../../etc"]


@pytest.mark.parametrize("bad", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_project_and_task_names_are_400_naming_the_field(api_any: Any,
                                                                  bad: str) -> None:
    path = _task(api_any)
    before = (api_any.get(f"{TS}/projects").json(),
              api_any.get(f"{TS}/projects/p1/tasks").json())
    _refused(api_any.post(f"{TS}/projects", json={"projectName": bad}), "projectName")
    _refused(api_any.post(f"{TS}/projects/p1/tasks", json={"jobName": bad}), "jobName")
    _refused(api_any.post(f"{path}/copy", json={"jobName": bad}), "jobName")
    _refused(api_any.get(f"{TS}/projects/p1/tasks", params={"jobName": bad}), "jobName")
    assert (api_any.get(f"{TS}/projects").json(),
            api_any.get(f"{TS}/projects/p1/tasks").json()) == before


def test_a_lone_surrogate_in_a_json_body_is_400(api_any: Any) -> None:
    for body in (b'{"projectName": "\\ud800"}', b'{"projectName": "a\\udfff"}'):
        r = api_any.post(f"{TS}/projects", content=body,
                         headers={"content-type": "application/json"})
        assert r.status_code == 400 and "surrogate" in r.json()["message"], r.text
    assert api_any.get(f"{TS}/projects").json() == []


@pytest.mark.parametrize("good", ["ünïcødé ☃", "é" * 128, "名前", "P99", "a.b-c_d (1)"])
def test_unicode_names_are_kept_as_given(api_any: Any, good: str) -> None:
    r = api_any.post(f"{TS}/projects", json={"projectName": good})
    assert r.status_code == 201 and r.json()["projectName"] == good, r.text
    r = api_any.post(f"{TS}/projects/{r.json()['projectId']}/tasks", json={"jobName": good})
    assert r.status_code == 201 and r.json()["jobName"] == good, r.text
    got = api_any.get(f"{TS}/projects/{r.json()['projectId']}/tasks",
                      params={"jobName": good}).json()
    assert [t["jobName"] for t in got] == [good]


HOSTILE_FILES = [b"a\x00.py", b"bell\x07.py", b"a\x1b[31m.py", "é".encode() * 130 + b".py",
                 b"x" * 253 + b".py", b"..", b"a/../b.py", b"../../x.py", b"a\\b.py",
                 b"/etc/passwd.py"]


@pytest.mark.parametrize("bad", HOSTILE_FILES, ids=range(len(HOSTILE_FILES)))
def test_hostile_deploy_file_names_are_400_and_write_nothing(api_any: Any,
                                                             bad: bytes) -> None:
    path = _task(api_any)
    before = _files(api_any)
    r = _deploy(api_any, path, bad)
    assert r.status_code == 400 and r.json()["field"] in ("file", "filename"), r.text
    assert _files(api_any) == before
    task = api_any.get(path).json()
    assert (task["status"], task["filename"]) == ("CREATED", None)


@pytest.mark.parametrize("good", ["é".encode() * 125 + b".py", "скрипт.py".encode(),
                                  b"x" * 252 + b".py", b"a b.py"])
def test_unicode_and_long_deploy_file_names_land_in_the_bundle(api_any: Any,
                                                               good: bytes) -> None:
    path = _task(api_any)
    before = _files(api_any)
    r = _deploy(api_any, path, good)
    assert r.status_code == 200 and r.json()["filename"] == good.decode(), r.text
    new = _files(api_any) - before
    task_id = r.json()["jobId"]  # all of them in the task's directory, the file in bundle/
    assert all(p.parts[0] == "tasks" and p.parts[2] == task_id for p in new), new
    assert ("bundle", good.decode()) in {p.parts[3:] for p in new}


@pytest.mark.parametrize("args", [b'["\\ud800"]', b'["a", "\\udc80b"]', b'["a\\u0000"]',
                                  b'["x"' + b', "x"' * 64 + b"]", b'["' + b"x" * 4097 + b'"]'],
                         ids=["surrogate", "low-surrogate", "nul", "65-args", "long-arg"])
def test_hostile_runtime_args_are_400_naming_args(api_any: Any, args: bytes) -> None:
    path = _task(api_any)
    before = _files(api_any)
    _refused(_deploy(api_any, path, b"main.py", CODE, (b"args", None, args)), "args")
    assert _files(api_any) == before
    assert api_any.get(path).json()["args"] == []


def test_unicode_runtime_args_reach_the_program(api_any: Any) -> None:
    path = _task(api_any)
    args = ["ünï ☃", "--x=1", "a'b\"c", "$(id)", "\n"]
    r = _deploy(api_any, path, b"main.py", b"import sys\nprint(sys.argv[1:])\n",
                (b"args", None, json.dumps(args).encode()))
    assert r.status_code == 200 and r.json()["args"] == args, r.text


HOSTILE_LINKS = ["a\x00b", "..", ".", "", "a/b", "../out.txt", "\x07", "é" * 128, "x" * 256]


@pytest.mark.parametrize("bad", HOSTILE_LINKS, ids=range(len(HOSTILE_LINKS)))
def test_hostile_link_file_names_are_400_naming_file_names(api_any: Any, bad: str) -> None:
    path = _task(api_any)
    _task(api_any, "source")
    body = {"externalProjectIds": [], "externalTaskIds": ["source"], "fileNames": [bad]}
    _refused(api_any.put(f"{path}/links", json=body), "fileNames")
    body["fileNames"] = ["ok.txt", bad]
    body["externalTaskIds"] = ["source", "source"]
    _refused(api_any.put(f"{path}/links", json=body), "fileNames")
    assert api_any.get(path).json()["links"] == []


# -- zips and sizes -----------------------------------------------------------------------
def _tiny_entries(n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(n):
            z.writestr(zipfile.ZipInfo(f"{i:x}"), b"")
    return buf.getvalue()


def _lying_count(data: bytes, count: int) -> bytes:
    """``data`` with its end record saying it holds ``count`` entries."""
    end = data.rfind(b"PK\x05\x06")
    out = bytearray(data)
    out[end + 8:end + 12] = count.to_bytes(2, "little") * 2
    return bytes(out)


@pytest.mark.parametrize("lie", [False, True], ids=["honest", "lying-end-record"])
def test_a_zip_of_many_tiny_entries_is_refused_before_zipfile_reads_it(
        api_any: Any, monkeypatch: pytest.MonkeyPatch, lie: bool) -> None:
    data = _tiny_entries(bundle.MAX_ZIP_ENTRIES + 1)  # 10,001 entries in under 1 MiB
    if lie:
        data = _lying_count(data, 1)
    path = _task(api_any)
    before = _files(api_any)
    opened = []
    real = zipfile.ZipFile
    monkeypatch.setattr(bundle.zipfile, "ZipFile",
                        lambda *a, **kw: opened.append(a) or real(*a, **kw))
    r = _deploy(api_any, path, b"main.py", CODE, (b"dependencies", b"deps.zip", data))
    _refused(r, "dependencies")
    assert f"limit of {bundle.MAX_ZIP_ENTRIES}" in r.json()["message"]
    assert opened == []  # refused on the count, not after a million ZipInfo objects
    assert _files(api_any) == before
    assert api_any.get(path).json()["status"] == "CREATED"


def test_a_zip_at_the_entry_limit_deploys(api_any: Any) -> None:
    path = _task(api_any)
    data = _tiny_entries(bundle.MAX_ZIP_ENTRIES)
    r = _deploy(api_any, path, b"main.py", CODE, (b"inputs", b"in.zip", data))
    assert r.status_code == 200, r.text


def test_an_oversize_deploy_is_413_naming_the_limit_and_stores_nothing(api_any: Any) -> None:
    path = _task(api_any)
    before = _files(api_any)
    big = b"#" * (3 << 20)  # the limit is 1 MiB (and 1 MiB for the form around it)
    for r in (_deploy(api_any, path, b"main.py", big),  # by its Content-Length
              _deploy(api_any, path, b"main.py", CODE, (b"inputs", b"in.zip", big))):
        assert r.status_code == 413, r.text
        assert "--task-bundle-mb" in r.json()["message"] and "1 MiB" in r.json()["message"]
    assert _files(api_any) == before
    assert api_any.get(path).json()["status"] == "CREATED"


def test_a_file_over_the_limit_inside_the_form_allowance_is_413(api_any: Any) -> None:
    path = _task(api_any)
    r = _deploy(api_any, path, b"main.py", b"#" * ((1 << 20) + 100))
    assert r.status_code == 413 and "--task-bundle-mb" in r.json()["message"], r.text
    assert api_any.get(path).json()["status"] == "CREATED"


# -- a client gone while its deploy builds --------------------------------------------------
def test_a_client_gone_during_the_build_leaves_the_task_as_it_was(
        api_any: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _task(api_any)
    assert _deploy(api_any, path, b"first.py", b"print('first')\n").status_code == 200
    before_task, before_files = api_any.get(path).json(), _files(api_any)
    real_build = routes.runtimes.build

    async def build_then_disconnect(*args: Any) -> None:
        await real_build(*args)
        current = cancel.current.get()
        assert current is not None
        current.cancel()  # what CancelOnDisconnect does when the client goes

    monkeypatch.setattr(routes.runtimes, "build", build_then_disconnect)
    r = _deploy(api_any, path, b"second.py", b"print('second')\n")
    assert r.status_code == 499, r.text  # nobody reads it; the deploy did not happen
    monkeypatch.undo()
    assert api_any.get(path).json() == before_task
    assert _files(api_any) == before_files  # first.py still deployed, nothing staged left
    r = _deploy(api_any, path, b"second.py", b"print('second')\n")
    assert r.status_code == 200 and r.json()["filename"] == "second.py", r.text


# -- a run's log and outputs ------------------------------------------------------------------
def test_hostile_output_paths_and_log_offsets_are_answered(api_any: Any) -> None:
    path = _task(api_any)
    r = _deploy(api_any, path, b"main.py", b"open('out.txt', 'w').write('42')\nprint('hi')\n")
    assert r.status_code == 200, r.text
    assert api_any.post(f"{path}/start").status_code == 200
    deadline = time.monotonic() + 30
    while api_any.get(f"{path}/runs/1").json()["state"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for bad in ("é" * 200, "x" * 300, "a/" + "y" * 256, "..%2F..%2Fbundle%2Fmain.py",
                "%2e%2e/%2e%2e/bundle/main.py", "out.txt%00"):
        r = api_any.get(f"{path}/runs/1/outputs/{bad}")
        assert r.status_code == 404 and r.json()["code"] == 404, (bad, r.text)
    assert api_any.get(f"{path}/runs/1/outputs/out.txt").content == b"42"
    for offset in (2**62, 2**40, 3):
        r = api_any.get(f"{path}/runs/1/log", params={"offset": offset})
        assert r.status_code == 200 and r.text == "", (offset, r.text)
    assert api_any.get(f"{path}/runs/1/log").text == "hi\n"


# -- a client gone in the middle of an operation of several steps (gone_after: conftest) ------
def _scheduled(api: Any) -> str:
    path = _task(api)
    assert _deploy(api, path).status_code == 200
    assert api.put(f"{path}/schedule", json={"cron": "0 4 6 * *"}).status_code == 200
    return path


def test_a_copy_whose_client_left_is_whole(api_any: Any, gone_after: Any) -> None:
    path = _scheduled(api_any)
    gone_after(api_any.app.state.tasks.store, "add_task")
    api_any.post(f"{path}/copy", json={"jobName": "the-copy"})
    [copy] = api_any.get(f"{TS}/projects/p1/tasks", params={"jobName": "the-copy"}).json()
    original = api_any.get(path).json()
    assert (copy["status"], copy["runTime"], copy["filename"]) == (
        "SCHEDULED", "py", "main.py")
    assert copy["schedule"]["cron"] == original["schedule"]["cron"]
    assert ("bundle", "main.py") in {p.parts[3:] for p in _files(api_any)
                                     if p.parts[2] == copy["jobId"]}


def test_a_delete_whose_client_left_is_whole(api_any: Any, gone_after: Any) -> None:
    path = _scheduled(api_any)
    gone_after(api_any.app.state.tasks.store, "update_task")
    api_any.delete(path)
    assert api_any.get(path).status_code == 404
    assert api_any.get(f"{TS}/projects/p1/tasks").json() == []
    gone_after(api_any.app.state.tasks.store, "task_ids_of_project")
    api_any.delete(f"{TS}/projects/p1")
    assert api_any.get(f"{TS}/projects").json() == []
    assert _files(api_any) == set()


def test_a_start_whose_client_left_leaves_no_run_queued(api_any: Any,
                                                        gone_after: Any) -> None:
    path = _task(api_any)
    assert _deploy(api_any, path).status_code == 200
    gone_after(api_any.app.state.tasks.store, "add_run")
    api_any.post(f"{path}/start")
    deadline = time.monotonic() + 30
    while (run := api_any.get(f"{path}/runs/1").json())["state"] != "succeeded":
        assert run["state"] in ("queued", "running") and time.monotonic() < deadline, run
        time.sleep(0.05)
    assert api_any.get(path).json()["status"] == "COMPLETED"


def test_a_cancel_whose_client_left_is_whole(api_any: Any, gone_after: Any) -> None:
    path = _scheduled(api_any)
    gone_after(api_any.app.state.tasks.store, "update_task")
    api_any.post(f"{path}/cancel")
    task = api_any.get(path).json()
    assert (task["status"], task["schedule"]["nextRun"]) == ("CANCELLED", None)

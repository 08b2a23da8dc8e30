"""Several ``pyconnector serve`` processes on one PostgreSQL, each with its own data dir:
with a shared blob store (``--blobs``) a task deployed through one runs through another,
its logs and outputs read through any, links reach across them, and a delete removes it
everywhere; without one, a run of another process's deploy fails saying what to do.
(docs/tasks.md, "Several processes".)"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import Server, start_server, wait_for

pytestmark = pytest.mark.e2e

TS = "/TaskService/v1.0"
MAKES = b"""\
import sys
print("input", open("input/n.txt").read(), flush=True)
open("result.txt", "w").write("made by " + sys.argv[1])
"""
READS = b"print(open('input/result.txt').read())\n"


@pytest.fixture
def pair(tmp_path: Path, own_pg_url: str) -> Iterator[tuple[Server, Server, Path]]:
    shared = tmp_path / "shared"
    a = start_server(tmp_path / "a", own_pg_url, "--blobs", shared.as_uri())
    b = start_server(tmp_path / "b", own_pg_url, "--blobs", shared.as_uri())
    try:
        yield a, b, shared
    finally:
        b.stop()
        a.stop()


def _client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=30)


def _deploy(c: httpx.Client, job: str, code: bytes, inputs: bytes | None = None,
            args: str = "[]") -> str:
    if c.get(f"{TS}/projects/shared").status_code == 404:
        assert c.post(f"{TS}/projects", json={"projectName": "shared"}).status_code == 201
    r = c.post(f"{TS}/projects/shared/tasks", json={"jobName": job})
    assert r.status_code == 201, r.text
    path = f"{TS}/projects/shared/tasks/{r.json()['jobId']}"
    files = {"file": ("main.py", code)}
    if inputs is not None:
        files["inputs"] = ("in.zip", inputs)
    r = c.post(f"{path}/deploy", files=files, data={"runTime": "py", "args": args})
    assert r.status_code == 200, r.text
    return path


def _run(c: httpx.Client, path: str) -> dict[str, object]:
    number = c.post(f"{path}/start").json()["run"]
    wait_for(f"run {number} of {path}", lambda: c.get(f"{path}/runs/{number}").json()[
        "endedOn"], timeout=60)
    return dict(c.get(f"{path}/runs/{number}").json())


def _zip(tmp_path: Path, name: str, text: str) -> bytes:
    target = tmp_path / "in.zip"
    with zipfile.ZipFile(target, "w") as z:
        z.writestr(name, text)
    return target.read_bytes()


def test_a_deploy_runs_anywhere_and_its_run_is_read_anywhere(
        pair: tuple[Server, Server, Path], tmp_path: Path) -> None:
    a, b, shared = pair
    key = a.new_key()
    with _client(a, key) as ca, _client(b, key) as cb:
        maker = _deploy(ca, "maker", MAKES, _zip(tmp_path, "n.txt", "7"), '["b"]')
        run = _run(cb, maker)  # deployed through a, run by b
        assert run["state"] == "succeeded", run
        assert ca.get(f"{maker}/runs/1/log").text == "input 7\n"  # read through a
        assert ca.get(f"{maker}/runs/1/outputs").json() == [{"name": "result.txt",
                                                             "size": 9}]
        assert ca.get(f"{maker}/runs/1/outputs/result.txt").content == b"made by b"
        # a task run by a takes the output b's run made
        reader = _deploy(ca, "reader", READS)
        maker_id = maker.rsplit("/", 1)[1]
        r = ca.put(f"{reader}/links", json={"externalProjectIds": ["shared"],
                                           "externalTaskIds": [maker_id],
                                           "fileNames": ["result.txt"]})
        assert r.status_code == 200, r.text
        assert _run(ca, reader)["state"] == "succeeded"
        assert ca.get(f"{reader}/runs/1/log").text == "made by b\n"
        # a redeploy through b is what a runs next
        r = cb.post(f"{maker}/deploy", files={"file": ("main.py", b"print('v2')\n")},
                    data={"runTime": "py", "overwrite": "true"})
        assert r.status_code == 200, r.text
        assert _run(ca, maker)["state"] == "succeeded"
        assert cb.get(f"{maker}/runs/2/log").text == "v2\n"
        # a copy made through b runs through a
        copy = cb.post(f"{maker}/copy", json={"jobName": "maker-copy"})
        assert copy.status_code == 201, copy.text
        copied = f"{TS}/projects/shared/tasks/{copy.json()['jobId']}"
        assert _run(ca, copied)["state"] == "succeeded"
        assert ca.get(f"{copied}/runs/1/log").text == "v2\n"
        # deleted through a: gone from the shared store too
        maker_blobs = shared / "tasks"
        assert any(maker_blobs.rglob("bundle.tar"))
        for path in (maker, reader, copied):
            assert ca.delete(path).status_code == 200
        assert not [p for p in maker_blobs.rglob("*") if p.is_file()]
        assert cb.post(f"{maker}/start").status_code == 404


def test_without_a_shared_store_a_run_of_another_process_deploy_says_so(
        tmp_path: Path, own_pg_url: str) -> None:
    a = start_server(tmp_path / "a", own_pg_url)
    b = start_server(tmp_path / "b", own_pg_url)
    try:
        key = a.new_key()
        with _client(a, key) as ca, _client(b, key) as cb:
            path = _deploy(ca, "here", b"print('hi')\n")
            run = _run(cb, path)
            assert run["state"] == "failed", run
            assert "deployed through another process" in str(run["reason"])
            assert "--blobs" in str(run["reason"])
            assert _run(ca, path)["state"] == "succeeded"
    finally:
        b.stop()
        a.stop()


LONG = b"import time\nprint('up', flush=True)\ntime.sleep(120)\n"


@pytest.mark.parametrize("how", ["stop", "delete"])
def test_a_run_in_one_process_is_stopped_or_deleted_through_another(
        pair: tuple[Server, Server, Path], how: str) -> None:
    a, b, _ = pair
    key = a.new_key()
    with _client(a, key) as ca, _client(b, key) as cb:
        path = _deploy(ca, "long", LONG)
        number = cb.post(f"{path}/start").json()["run"]  # b runs it
        wait_for("the run to start", lambda: cb.get(f"{path}/runs/{number}").json()[
            "state"] == "running", timeout=30)
        pid = _pid_of(b, path)
        if how == "stop":
            r = ca.post(f"{path}/stop")
            assert r.status_code == 200 and "1 run(s) stopped" in r.json()["message"]
            wait_for("b to stop its run", lambda: ca.get(f"{path}/runs/{number}").json()[
                "state"] == "stopped", timeout=15)
        else:
            assert ca.delete(path).status_code == 200
        wait_for("the task's process to end", lambda: not _running(pid), timeout=15)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pid_of(server: Server, path: str) -> int:
    """The pid of the one process of ``server`` running ``path``'s task (its working
    directory is under the server's run directory, named after its data dir)."""
    task_id = path.rsplit("/", 1)[1]
    digest = hashlib.sha256(str(server.data_dir.resolve()).encode()).hexdigest()[:12]
    root = str(Path(tempfile.gettempdir()) / f"pyconnector-runs-{digest}")
    found = [p for p in psutil.process_iter(["environ", "cwd"])
             if (p.info["environ"] or {}).get("PYCONNECTOR_TASK") == task_id
             and (p.info["cwd"] or "").startswith(root)]
    assert len(found) == 1, found
    return int(found[0].pid)

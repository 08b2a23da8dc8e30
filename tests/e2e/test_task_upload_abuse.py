"""Deploys abused over a real socket, against a real ``pyconnector serve`` process with
``--task-bundle-mb 1``: a client that disconnects in the middle of its upload, and an
oversize form sent chunked (no Content-Length). Nothing half-deployed is left, the task
stays as it was, and the server keeps serving; the oversize form is refused while it
arrives, not after it was all read."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import Server, start_server

pytestmark = pytest.mark.e2e

TS = "/TaskService/v1.0"
BOUNDARY = "abuse-boundary"


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("task-abuse"), "", "--task-bundle-mb", "1")
    yield s
    s.stop()


@pytest.fixture
def deployed(small_server: Server) -> Iterator[tuple[httpx.Client, str, dict[str, object]]]:
    """A client of a new tenant, and the path and view of a task deployed once."""
    with httpx.Client(base_url=small_server.url, timeout=30,
                      headers={"x-api-key": small_server.new_key()}) as client:
        assert client.post(f"{TS}/projects", json={"projectName": "p1"}).status_code == 201
        job = client.post(f"{TS}/projects/p1/tasks", json={"jobName": "j1"}).json()["jobId"]
        path = f"{TS}/projects/p1/tasks/{job}"
        r = client.post(f"{path}/deploy", data={"runTime": "py"},
                        files={"file": ("first.py", b"print('first')\n")})
        assert r.status_code == 200, r.text
        yield client, path, r.json()


def _task_files(server: Server, job: str) -> list[str]:
    """The files of task ``job``'s directory (its bundle, and anything staged)."""
    [task_dir] = (server.data_dir / "tasks").glob(f"t*/{job}")
    return sorted(str(p.relative_to(task_dir)) for p in task_dir.rglob("*"))


def _form_head(filename: str = "second.py") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"runTime\"\r\n\r\npy\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue"
            f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\n\r\n").encode()


def _connect(server: Server, path: str, key: str, headers: dict[str, str]) -> socket.socket:
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    lines = [f"POST {path}/deploy HTTP/1.1", f"Host: {url.netloc}", f"x-api-key: {key}",
             f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
             *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def test_a_client_gone_mid_upload_leaves_the_task_as_it_was(
        small_server: Server, deployed: tuple[httpx.Client, str, dict[str, object]]) -> None:
    client, path, before = deployed
    job = str(before["jobId"])
    files_before = _task_files(small_server, job)
    assert "bundle/first.py" in files_before
    body = _form_head() + b"#" * (512 << 10) + f"\r\n--{BOUNDARY}--\r\n".encode()
    for cut in (len(body) // 2, len(body) - 3):  # in the file; just before the end
        sock = _connect(small_server, path, client.headers["x-api-key"],
                        {"Content-Length": str(len(body))})
        sock.sendall(body[:cut])
        sock.close()
    # The server noticed (a request it still reads would hold the task's files open);
    # then: the same task, the same files, and it serves the next deploy.
    deadline = time.monotonic() + 10
    while _task_files(small_server, job) != files_before:
        assert time.monotonic() < deadline, _task_files(small_server, job)
        time.sleep(0.05)
    assert client.get(path).json() == before
    r = client.post(f"{path}/deploy", files={"file": ("third.py", b"print(3)\n")},
                    data={"runTime": "py", "overwrite": "true"})
    assert r.status_code == 200 and r.json()["filename"] == "third.py", r.text
    after = _task_files(small_server, job)
    assert "bundle/third.py" in after and "bundle/first.py" not in after
    assert not [f for f in after if f.startswith(("bundle.new", "bundle.old"))], after


def test_an_oversize_chunked_form_is_413_before_it_was_all_sent(
        small_server: Server, deployed: tuple[httpx.Client, str, dict[str, object]]) -> None:
    client, path, before = deployed
    job = str(before["jobId"])
    files_before = _task_files(small_server, job)
    planned = 256 << 20  # what the client would send: 256 times the limit
    sock = _connect(small_server, path, client.headers["x-api-key"],
                    {"Transfer-Encoding": "chunked"})
    sent, chunk = 0, b"#" * (64 << 10)
    try:
        head = _form_head()
        sock.sendall(f"{len(head):x}\r\n".encode() + head + b"\r\n")
        # Send until the answer comes (or the server stops reading and the socket's
        # buffers fill: then the send times out, and the answer must be there).
        while sent < planned:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        sock.settimeout(30)
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413", answer[:500]
    assert b"--task-bundle-mb" in rest and b"1 MiB" in rest, rest[-300:]
    # Refused near the limit (1 MiB, and 1 MiB for the form), with socket buffers on
    # top: far from all of it read.
    assert sent < 32 << 20, sent
    assert _task_files(small_server, job) == files_before
    assert client.get(path).json() == before
    assert client.get("/health").status_code == 200

"""The routes remote workers call (pyconnector_server/backends/executor/remote.py), called
here the way a worker would - and the ways a worker should not: unknown jobs, wrong
tokens, a job taken twice, hostile tars, oversized reports, a worker that goes silent.

The queue is an in-memory list (a RemoteExecutor whose ``send`` keeps the message): what
is under test is the platform's side of the protocol, served by uvicorn in the test's
event loop; tests/backends/test_executor_contract.py runs the whole of it with Celery."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pyconnector_server.backends.executor import Job, Limits
from pyconnector_server.backends.executor.remote import RemoteExecutor
from tests.conftest import worker_routes

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ListExecutor(RemoteExecutor):
    """A remote executor whose queue is a list."""

    kind = "list"

    def __init__(self, callback_url: str, lost_after: float = 30.0) -> None:
        super().__init__(2, callback_url, lost_after)
        self.sent: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


@pytest.fixture
async def routes() -> AsyncIterator[str]:
    async with worker_routes() as url:
        yield url


@pytest.fixture
async def executor(routes: str) -> AsyncIterator[ListExecutor]:
    ex = ListExecutor(routes)
    yield ex
    await ex.close()


@pytest.fixture
def place() -> Path:
    return Path(tempfile.mkdtemp(prefix="pyc-remote-"))


def make_job(place: Path, name: str = "job", **limits: Any) -> Job:
    work = place / name
    work.mkdir()
    (work / "main.py").write_text("print('hi')\n")
    return Job(run_id=name, workdir=work, command=("python3", "main.py"),
               stdout=place / f"{name}.out", stderr=place / f"{name}.err",
               limits=Limits(**limits))


async def submitted(executor: ListExecutor, job: Job) -> tuple[Any, dict[str, Any]]:
    """Submit ``job``; its execution and the message a worker would get."""
    execution = await executor.submit(job)
    with anyio.fail_after(5):
        while len(executor.sent) < 1 or executor.sent[-1]["run_id"] != job.run_id:
            await anyio.sleep(0.01)
    return execution, executor.sent[-1]


def worker(message: dict[str, Any], token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=message["url"], timeout=10,
                             headers={"x-job-token": message["token"] if token is None else token})


def tar_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return out.getvalue()


async def test_the_message_holds_what_a_worker_needs_and_no_files(
        executor: ListExecutor, place: Path) -> None:
    job = make_job(place, memory_bytes=64 << 20)
    _, message = await submitted(executor, job)
    assert set(message) == {"run_id", "url", "token", "command", "env", "limits"}
    assert message["command"] == ["python3", "main.py"]
    assert message["limits"]["memory_bytes"] == 64 << 20
    assert "print('hi')" not in json.dumps(message)


async def test_a_worker_fetches_the_files_once(executor: ListExecutor, place: Path) -> None:
    _, message = await submitted(executor, make_job(place))
    async with worker(message) as w:
        r = await w.get("/bundle")
        assert r.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            assert "./main.py" in tar.getnames()
        again = await w.get("/bundle")
    assert again.status_code == 410  # a second worker given the same message drops it


async def test_unknown_jobs_and_wrong_tokens_get_the_same_404(
        executor: ListExecutor, place: Path) -> None:
    _, message = await submitted(executor, make_job(place))
    async with worker(message, token="not-the-token") as w:
        wrong = await w.get("/bundle")
        wrong_beat = await w.post("/beat", json={"state": "running"})
    unknown_url = message["url"].rsplit("/", 1)[0] + "/" + "0" * 32
    async with worker({**message, "url": unknown_url}) as w:
        unknown = await w.get("/bundle")
    async with worker(message, token="") as w:
        none = await w.get("/bundle")
    assert [wrong.status_code, wrong_beat.status_code, unknown.status_code,
            none.status_code] == [404] * 4
    assert wrong.json()["message"] == unknown.json()["message"]
    async with worker(message) as w:  # the real worker was not locked out by them
        assert (await w.get("/bundle")).status_code == 200


async def test_a_job_stopped_before_a_worker_took_it_is_gone_for_the_worker(
        executor: ListExecutor, place: Path) -> None:
    execution, message = await submitted(executor, make_job(place))
    await execution.stop()
    assert (await execution.wait()).ending == "stopped"
    async with worker(message) as w:
        assert (await w.get("/bundle")).status_code == 404


async def test_reports_write_the_logs_and_orders_reach_a_held_report(
        executor: ListExecutor, place: Path) -> None:
    job = make_job(place)
    execution, message = await submitted(executor, job)
    async with worker(message) as w:
        await w.get("/bundle")
        started = time.time()
        r = await w.post("/beat", json={
            "state": "running", "started_at": started, "final": True,
            "stdout": {"offset": 0, "data": base64.b64encode(b"line 1\n").decode()}})
        assert r.json() == {}
        assert job.stdout.read_text() == "line 1\n" and job.stderr.read_text() == ""
        assert (execution.state, execution.started_at) == ("running", started)
        # a report with no order waits for one: the stop answers it at once
        held = asyncio.ensure_future(w.post("/beat", json={"state": "running"}))
        await anyio.sleep(0.1)
        stopping = asyncio.ensure_future(execution.stop(grace=2))
        with anyio.fail_after(2):
            order = (await held).json()
        assert order == {"order": "stop", "grace": 2}
        await w.post("/end", json={"ending": "stopped", "exit_code": -15, "reason": "stopped",
                                   "started_at": started, "ended_at": time.time()})
        with anyio.fail_after(2):
            await stopping
        assert (await execution.wait()).exit_code == -15
        assert (await w.post("/beat", json={"state": "running"})).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"state": "exploded"}, "state"),
    ({"state": "running", "stdout": {"offset": -1, "data": ""}}, "offset"),
    ({"state": "running", "stdout": {"offset": 0, "data": "A" * (2 << 20)}}, "data"),
    ({"state": "running", "extra": 1}, "extra"),
])
async def test_a_malformed_report_is_refused_naming_the_field(
        executor: ListExecutor, place: Path, body: dict[str, Any], field: str) -> None:
    job = make_job(place)
    _, message = await submitted(executor, job)
    async with worker(message) as w:
        r = await w.post("/beat", json=body)
    assert r.status_code == 400, r.text
    assert field in json.dumps(r.json())
    assert not job.stdout.exists()


async def test_outputs_land_in_the_workdir_and_nowhere_else(
        executor: ListExecutor, place: Path) -> None:
    job = make_job(place)
    _, message = await submitted(executor, job)
    async with worker(message) as w:
        ok = await w.put("/outputs", content=tar_of({"out/result.txt": b"42"},
                                                    links={"leak": "/etc/passwd"}))
        escape = await w.put("/outputs", content=tar_of({"../escaped.txt": b"x"}))
        absolute = await w.put("/outputs", content=tar_of({"/tmp/absolute.txt": b"x"}))
    assert (ok.status_code, ok.json()) == (200, {"files": 1})
    assert (job.workdir / "out" / "result.txt").read_text() == "42"
    assert not (job.workdir / "leak").exists()  # links are not unpacked
    assert escape.status_code == 400 and "outside" in escape.json()["message"]
    assert not (place / "escaped.txt").exists()
    # an absolute name is taken as relative to the working directory (tarfile's filter)
    assert absolute.status_code == 200
    assert (job.workdir / "tmp" / "absolute.txt").read_text() == "x"
    assert not Path("/tmp/absolute.txt").exists()


async def test_outputs_over_their_limit_are_refused(executor: ListExecutor,
                                                    place: Path) -> None:
    job = make_job(place, file_bytes=1024)  # outputs may total 4 KiB
    _, message = await submitted(executor, job)
    async with worker(message) as w:
        r = await w.put("/outputs", content=tar_of({"big": b"x" * 8192}))
    assert r.status_code == 413
    assert not (job.workdir / "big").exists()


async def test_a_worker_that_goes_silent_has_its_job_lost(routes: str, place: Path) -> None:
    executor = ListExecutor(routes, lost_after=0.5)
    try:
        execution, message = await submitted(executor, make_job(place))
        async with worker(message) as w:
            await w.get("/bundle")
        with anyio.fail_after(5):
            outcome = await execution.wait()
        assert (outcome.ending, outcome.exit_code) == ("failed", None)
        assert outcome.reason == "lost: its worker stopped reporting for 0.5 s"
    finally:
        await executor.close()


async def test_a_job_no_worker_takes_is_never_lost(routes: str, place: Path) -> None:
    executor = ListExecutor(routes, lost_after=0.2)
    try:
        execution, _ = await submitted(executor, make_job(place))
        await anyio.sleep(1)
        assert execution.state == "queued"
    finally:
        await executor.close()


async def test_reports_for_a_job_whose_directory_is_gone_are_answered(
        executor: ListExecutor, place: Path) -> None:
    import shutil

    job = make_job(place)
    execution, message = await submitted(executor, job)
    async with worker(message) as w:
        await w.get("/bundle")
        shutil.rmtree(place)  # its task was deleted meanwhile
        r = await w.post("/beat", json={
            "state": "running", "started_at": time.time(), "final": True,
            "stdout": {"offset": 0, "data": base64.b64encode(b"x").decode()}})
        assert r.status_code == 200, r.text
        r = await w.post("/end", json={"ending": "succeeded", "exit_code": 0,
                                       "reason": "exit code 0", "started_at": time.time(),
                                       "ended_at": time.time()})
        assert r.status_code == 200, r.text
    assert (await execution.wait()).ending == "succeeded"


# -- hostile bodies, seeded: a worker's token in the wrong hands -----------------------------
_VOCAB = ["state", "started_at", "stdout", "stderr", "final", "offset", "data", "ending",
          "exit_code", "reason", "ended_at", "order", "grace", "x" * 300, ""]
_NUMBERS: list[Any] = [0, -1, 1, 2**31, -2**31 - 1, 2**63, -2**63 - 1, 10**400, 1e308,
                       -1e308, 0.5, float("nan"), float("inf"), float("-inf"), True]


def _hostile(rng: Any, depth: int = 0) -> Any:
    """A JSON value of the shapes a worker sends, mangled: wrong types, extreme numbers
    (NaN and infinities included, as Python's json writes them), junk keys, nesting."""
    roll = rng.random()
    if depth > 3 or roll < 0.25:
        return rng.choice([*_NUMBERS, None, "", "running", "succeeded", "A" * 1000,
                           "\x00", "é", "AAAA", "=="])
    if roll < 0.5:
        return [_hostile(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_VOCAB): _hostile(rng, depth + 1) for _ in range(rng.randrange(6))}


def _near_valid(rng: Any) -> dict[str, Any]:
    """A report or an end that is nearly right: one field set to something hostile."""
    beat: dict[str, Any] = {"state": "running", "final": True, "started_at": time.time(),
                            "stdout": {"offset": 0, "data": "aGk="}}
    end: dict[str, Any] = {"ending": "succeeded", "exit_code": 0, "reason": "exit code 0",
                           "started_at": time.time(), "ended_at": time.time()}
    body = dict(rng.choice([beat, end]))
    key = rng.choice(list(body))
    body[key] = rng.choice(_NUMBERS + [_hostile(rng)])
    if key == "stdout" or rng.random() < 0.3:
        body["stdout" if "state" in body else "reason"] = (
            {"offset": rng.choice(_NUMBERS), "data": rng.choice(["aGk=", "!!", "A" * 5])}
            if "state" in body
            else rng.choice(["", "r" * 2001, "\x00"]))
    return body


async def test_hostile_reports_never_break_the_platform(executor: ListExecutor,
                                                        place: Path) -> None:
    """300 seeded hostile bodies to the report and end routes: each is answered (never a
    5xx), nothing lands outside the jobs' directories, logs stay small, and every end that
    was accepted is one a run can store (finite times, a 32-bit exit code). A job that an
    accepted end finished is followed by a fresh one, so every body meets a live job."""
    import random

    rng = random.Random(20261129)
    before = set(place.rglob("*"))
    jobs: list[Any] = []
    ended = 0
    for i in range(300):
        if not jobs or jobs[-1][1].state == "ended":
            if jobs:
                ended += 1
                outcome = await jobs[-1][1].wait()
                assert outcome.exit_code is None or -2**31 <= outcome.exit_code < 2**31
                for t in (outcome.started_at, outcome.ended_at):
                    assert t is None or 0 <= t < 1e11, outcome
            job = make_job(place, f"job{len(jobs)}")
            execution, message = await submitted(executor, job)
            jobs.append((job, execution, message))
            async with worker(message) as w:
                assert (await w.get("/bundle")).status_code == 200
        body = _near_valid(rng) if i % 2 else _hostile(rng)
        route = "/end" if isinstance(body, dict) and "ending" in body else "/beat"
        content = json.dumps(body)  # NaN and Infinity as Python writes them
        async with worker(jobs[-1][2]) as w:
            r = await w.post(route, content=content,
                             headers={"content-type": "application/json"})
        assert r.status_code in (200, 400), (i, route, content[:300], r.text)
        if r.status_code != 200:
            error = r.json()
            assert error["code"] == 400 and error["message"], error
    assert ended >= 3, ended  # near-valid ends were accepted: the checks above ran
    made = set(place.rglob("*")) - before
    for job, _, _ in jobs:
        for log in (job.stdout, job.stderr):
            assert not log.exists() or log.stat().st_size < 1 << 20
    dirs = [job.workdir for job, _, _ in jobs]
    logs = {p for job, _, _ in jobs for p in (job.stdout, job.stderr)}
    assert all(p in logs or any(d == p or d in p.parents for d in dirs) for p in made), made

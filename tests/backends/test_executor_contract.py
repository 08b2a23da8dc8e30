"""One contract for every task executor (pyconnector_server/backends/executor/base.py):
the embedded one (local://) and a cluster's (celery://: a real `pyconnector worker`
process on RabbitMQ, reporting to the executor's routes served in the test's event
loop). Jobs are small Python programs; each test asserts on what the job itself reports
(its output, its files, its process ids) rather than on the executor's word."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import psutil
import pytest

from pyconnector_server.backends.executor import (
    PYTHON,
    Executor,
    Job,
    Limits,
    UnknownBackend,
    executors,
    open_executor,
)
from pyconnector_server.backends.executor.local import DEFAULT_USER, LocalExecutor
from tests.conftest import celery_worker, worker_routes

pytestmark = pytest.mark.anyio

#: every executor, by the URL that opens it with room for two jobs at once
EXECUTORS = [pytest.param("local://?concurrency=2", id="local"),
             pytest.param("celery://?concurrency=2", id="celery")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def job_account() -> str | None:
    """The account a job runs as: an unprivileged one when the tests run as root."""
    return DEFAULT_USER if os.geteuid() == 0 else None


@pytest.fixture(scope="module")
def python() -> str:
    """The interpreter jobs run: this one, unless the job's account cannot reach it (a
    virtualenv under a root-only home); then the system's."""
    for candidate in (sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin")):
        if not candidate:
            continue
        try:
            subprocess.run([candidate, "-c", "pass"], user=job_account(), cwd="/", check=True)
        except (OSError, subprocess.CalledProcessError):
            continue
        return candidate
    pytest.skip(f"no Python interpreter that {job_account()} may run")


@pytest.fixture
def place() -> Iterator[Path]:
    """Where the test's jobs live: under /tmp and open to the job's account (pytest's
    tmp_path is in a directory only its owner may enter)."""
    root = Path(tempfile.mkdtemp(prefix="pyconnector-executor-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def celery_workers(celery_queue: str) -> Iterator[str]:
    """A worker taking two jobs at once from the module's queue; the queue's name."""
    with celery_worker(f"celery://?queue={celery_queue}", concurrency=2):
        yield celery_queue


@pytest.fixture(params=EXECUTORS)
async def executor(request: pytest.FixtureRequest) -> AsyncIterator[Executor]:
    if request.param.startswith("celery"):
        queue = request.getfixturevalue("celery_workers")
        async with worker_routes() as url:
            ex = open_executor(f"{request.param}&queue={queue}", callback_url=url)
            yield ex
            await ex.close()
        return
    ex = open_executor(request.param)
    yield ex
    await ex.close()


JobMaker = Callable[..., Job]


@pytest.fixture
def make_job(place: Path, python: str) -> JobMaker:
    """``make_job(code, **limits, env=...)``: a job running Python ``code`` in a fresh
    working directory; its logs sit beside that directory."""

    def make(code: str, env: dict[str, str] | None = None, **limits: float) -> Job:
        run_id = f"run-{uuid.uuid4().hex[:8]}"
        workdir = place / run_id
        workdir.mkdir()
        return Job(run_id=run_id, workdir=workdir,
                   command=(python, "-c", textwrap.dedent(code)),
                   stdout=place / f"{run_id}.out", stderr=place / f"{run_id}.err",
                   env=env or {}, limits=Limits(**limits))  # type: ignore[arg-type]

    return make


async def eventually(what: str, done: Callable[[], object], timeout: float = 10) -> None:
    """Await ``done()`` becoming true; fail naming ``what`` after ``timeout`` seconds."""
    with anyio.move_on_after(timeout):
        while not done():
            await anyio.sleep(0.02)
        return
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent's wait() does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def output(job: Job) -> str:
    return job.stdout.read_text() if job.stdout.exists() else ""


# -- running ----------------------------------------------------------------------------------
async def test_output_lands_in_the_job_files_and_exit_0_succeeds(
        executor: Executor, make_job: JobMaker) -> None:
    job = make_job("""
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
    """)
    before = time.time()
    outcome = await (await executor.submit(job)).wait()
    assert (outcome.ending, outcome.exit_code) == ("succeeded", 0)
    assert job.stdout.read_text() == "to stdout\n"
    assert job.stderr.read_text() == "to stderr\n"
    assert outcome.started_at is not None
    assert before <= outcome.started_at <= outcome.ended_at <= time.time()


async def test_a_nonzero_exit_fails_with_its_code(executor: Executor, make_job: JobMaker) -> None:
    outcome = await (await executor.submit(make_job("raise SystemExit(3)"))).wait()
    assert (outcome.ending, outcome.exit_code, outcome.reason) == ("failed", 3, "exit code 3")


async def test_a_command_that_cannot_start_fails_without_an_exit_code(
        executor: Executor, place: Path) -> None:
    (place / "w").mkdir()
    job = Job("run-missing", place / "w", ("/nonexistent/bin/task",), place / "o", place / "e")
    outcome = await (await executor.submit(job)).wait()
    assert (outcome.ending, outcome.exit_code, outcome.started_at) == ("failed", None, None)
    assert "/nonexistent/bin/task" in outcome.reason


async def test_the_environment_is_scrubbed(executor: Executor, make_job: JobMaker,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYCONNECTOR_TEST_SECRET", "hunter2")
    job = make_job("import json, os; print(json.dumps([os.getcwd(), dict(os.environ)]))",
                   env={"TASK_SETTING": "on"})
    outcome = await (await executor.submit(job)).wait()
    assert outcome.ending == "succeeded", job.stderr.read_text()
    cwd, env = json.loads(job.stdout.read_text())
    assert "PYCONNECTOR_TEST_SECRET" not in env
    assert "hunter2" not in json.dumps(env)
    assert set(env) == {"PATH", "LANG", "HOME", "TMPDIR", "TASK_SETTING"}
    assert env["HOME"] == cwd  # the job's working directory, wherever it runs
    assert env["TMPDIR"] == str(Path(cwd) / ".tmp")
    assert env["TASK_SETTING"] == "on"
    assert env["PATH"] == os.environ["PATH"]


async def test_the_job_runs_in_its_workdir(executor: Executor, make_job: JobMaker) -> None:
    # the workdir itself (local) or a copy on the worker: its files there, what the job
    # makes or changes back in the workdir at the end
    job = make_job("""
        import os, tempfile
        print(os.getcwd())
        print(open("given").read())
        open("made-here", "w").write("x")
        open("changed", "w").write("new")
        with tempfile.NamedTemporaryFile(delete=False) as f:
            print(f.name)
    """)
    (job.workdir / "given").write_text("from the bundle")
    (job.workdir / "changed").write_text("old")
    outcome = await (await executor.submit(job)).wait()
    assert outcome.ending == "succeeded", job.stderr.read_text()
    cwd, given, temp = job.stdout.read_text().splitlines()
    assert given == "from the bundle"
    if executor.kind == "local":
        assert Path(cwd).resolve() == job.workdir.resolve()
    assert (job.workdir / "made-here").read_text() == "x"
    assert (job.workdir / "changed").read_text() == "new"
    assert Path(temp).parent == Path(cwd) / ".tmp"


async def test_python_means_an_interpreter_the_job_can_run(
        executor: Executor, make_job: JobMaker) -> None:
    job = make_job("")
    job = Job(job.run_id, job.workdir, (PYTHON, "-c", "import sys; print(sys.version_info[0])"),
              job.stdout, job.stderr)
    outcome = await (await executor.submit(job)).wait()
    assert outcome.ending == "succeeded", job.stderr.read_text()
    assert job.stdout.read_text() == "3\n"


async def test_at_most_max_concurrency_jobs_run_in_submission_order(
        executor: Executor, make_job: JobMaker) -> None:
    assert executor.max_concurrency == 2
    # the second runs longest: the third job takes the first one's slot, the fourth the
    # third's, while the second still runs
    code = "import time; print(time.time()); time.sleep({}); print(time.time())"
    jobs = [make_job(code.format(s)) for s in (0.3, 1.0, 0.3, 0.3)]
    executions = [await executor.submit(job) for job in jobs]
    assert [e.state for e in executions[2:]] == ["queued", "queued"]
    outcomes = [await e.wait() for e in executions]
    assert all(o.ending == "succeeded" for o in outcomes)
    spans = [tuple(map(float, job.stdout.read_text().split())) for job in jobs]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start <= e) <= 2, spans
    # the first two start together (in either order); the queued ones in submission order
    starts = [s for s, _ in spans]
    assert max(starts[:2]) < starts[2] < starts[3], "queued jobs started out of order"
    # each queued job waited for a slot
    assert spans[2][0] >= spans[0][1] and spans[3][0] >= spans[2][1], spans


# -- stop, pause, resume --------------------------------------------------------------------------
SPAWNS_A_CHILD = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(child.pid, flush=True)
    time.sleep(60)
"""


async def test_stop_ends_the_whole_process_group(executor: Executor, make_job: JobMaker) -> None:
    job = make_job(SPAWNS_A_CHILD)
    execution = await executor.submit(job)
    await eventually("the job's child", lambda: output(job).strip())
    child = int(output(job))
    assert alive(child)
    with anyio.fail_after(5):
        await execution.stop(grace=3)
    outcome = await execution.wait()
    assert (outcome.ending, outcome.exit_code) == ("stopped", -signal.SIGTERM)
    assert execution.state == "ended"
    await eventually("the job's child to die with it", lambda: not alive(child), timeout=3)


async def test_stop_kills_a_job_that_ignores_sigterm_after_the_grace(
        executor: Executor, make_job: JobMaker) -> None:
    job = make_job("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """)
    execution = await executor.submit(job)
    await eventually("the job to ignore SIGTERM", lambda: output(job))
    began = time.monotonic()
    with anyio.fail_after(5):
        await execution.stop(grace=0.5)
    took = time.monotonic() - began
    outcome = await execution.wait()
    assert (outcome.ending, outcome.exit_code) == ("stopped", -signal.SIGKILL)
    assert 0.4 <= took < 3, took


async def test_a_job_stopped_while_queued_never_starts(
        executor: Executor, make_job: JobMaker) -> None:
    sleepers = [await executor.submit(make_job("import time; time.sleep(30)"))
                for _ in range(executor.max_concurrency)]
    queued_job = make_job("open('started', 'w')")
    queued = await executor.submit(queued_job)
    assert queued.state == "queued"
    await queued.stop()
    outcome = await queued.wait()
    assert (outcome.ending, outcome.exit_code, outcome.started_at) == ("stopped", None, None)
    assert queued.started_at is None and queued.state == "ended"
    for s in sleepers:
        await s.stop(grace=1)
    await anyio.sleep(0.3)  # a slot is free now: it would have started by then
    assert not (queued_job.workdir / "started").exists()
    assert not queued_job.stdout.exists()


async def test_pause_suspends_the_job_and_its_wall_clock(
        executor: Executor, make_job: JobMaker) -> None:
    # 16 ticks of 0.05 s: under a second of running, against a 1.5 s wall-clock limit
    job = make_job("""
        import time
        for i in range(16):
            print(i, flush=True)
            time.sleep(0.05)
    """, wall_seconds=1.5)
    execution = await executor.submit(job)
    await eventually("the first ticks", lambda: len(output(job).split()) >= 3)
    await execution.pause()
    assert execution.state == "paused"
    with pytest.raises(ValueError):
        await execution.pause()
    await anyio.sleep(0.2)  # a tick under way may still land
    during = output(job)
    await anyio.sleep(1.8)
    assert output(job) == during, "the job wrote while paused"
    assert execution.state == "paused"
    await execution.resume()
    assert execution.state == "running"
    with pytest.raises(ValueError):
        await execution.resume()
    outcome = await execution.wait()
    # over two seconds passed since it started, but it ran for under one
    assert outcome.ending == "succeeded", outcome
    assert outcome.started_at is not None and outcome.ended_at - outcome.started_at > 2
    assert output(job).split() == [str(i) for i in range(16)]
    with pytest.raises(ValueError):
        await execution.pause()


async def test_stop_lets_a_paused_job_clean_up(executor: Executor, make_job: JobMaker) -> None:
    # a handled SIGTERM waits for the process to continue (an unhandled one kills at once)
    job = make_job("""
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
        print("up", flush=True)
        time.sleep(60)
    """)
    execution = await executor.submit(job)
    await eventually("the job", lambda: output(job))
    await execution.pause()
    with anyio.fail_after(3):
        await execution.stop(grace=2)
    outcome = await execution.wait()
    assert (outcome.ending, outcome.exit_code) == ("stopped", 7), "its SIGTERM handler did not run"


# -- limits -------------------------------------------------------------------------------------
async def test_over_the_memory_limit_is_out_of_memory(
        executor: Executor, make_job: JobMaker) -> None:
    # touched in 10 MB steps (b"x" * n writes every page), 300 MB in all
    job = make_job("""
        import time
        held = []
        for _ in range(30):
            held.append(b"x" * 10_000_000)
            time.sleep(0.02)
        print("allocated 300 MB", flush=True)
        time.sleep(30)
    """, memory_bytes=64 << 20)
    execution = await executor.submit(job)
    with anyio.fail_after(3):
        outcome = await execution.wait()
    assert (outcome.ending, outcome.exit_code) == ("out_of_memory", -signal.SIGKILL)
    assert outcome.reason == "killed: over its 64 MiB memory limit"
    assert "allocated" not in output(job)


async def test_memory_of_the_job_children_counts(executor: Executor, make_job: JobMaker) -> None:
    job = make_job("""
        import subprocess, sys, time
        grow = "import time; x = b'x' * 40_000_000; time.sleep(30)"
        children = [subprocess.Popen([sys.executable, "-c", grow]) for _ in range(3)]
        print(" ".join(str(c.pid) for c in children), flush=True)
        time.sleep(30)
    """, memory_bytes=64 << 20)
    execution = await executor.submit(job)
    with anyio.fail_after(5):
        outcome = await execution.wait()
    assert outcome.ending == "out_of_memory", outcome
    pids = [int(p) for p in output(job).split()]
    await eventually("the children to die", lambda: not any(map(alive, pids)), timeout=3)


async def test_over_the_wall_clock_limit_is_timed_out(
        executor: Executor, make_job: JobMaker) -> None:
    execution = await executor.submit(make_job("import time; time.sleep(10)", wall_seconds=1))
    with anyio.fail_after(4):
        outcome = await execution.wait()
    assert (outcome.ending, outcome.exit_code) == ("timed_out", -signal.SIGKILL)
    assert outcome.reason == "killed: ran longer than its 1 s wall-clock limit"
    assert outcome.started_at is not None
    assert 1 <= outcome.ended_at - outcome.started_at < 3


async def test_over_the_cpu_limit_is_cpu_limit(executor: Executor, make_job: JobMaker) -> None:
    execution = await executor.submit(make_job("while True: pass", cpu_seconds=1))
    with anyio.fail_after(5):
        outcome = await execution.wait()
    assert outcome.ending == "cpu_limit", outcome
    assert outcome.exit_code == -signal.SIGXCPU  # Linux's warning at the soft limit ends it
    assert "1 s CPU" in outcome.reason


async def test_a_job_ignoring_sigxcpu_is_killed_at_the_hard_cpu_limit(
        executor: Executor, make_job: JobMaker) -> None:
    job = make_job("""
        import signal
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        while True: pass
    """, cpu_seconds=1)
    execution = await executor.submit(job)
    # 6 s of CPU time (1 + the hard margin): on a loaded machine, many more of wall time
    with anyio.fail_after(60):
        outcome = await execution.wait()
    assert outcome.ending == "cpu_limit", outcome
    assert outcome.exit_code == -signal.SIGKILL


async def test_over_the_open_files_limit_fails(executor: Executor, make_job: JobMaker) -> None:
    job = make_job("""
        files = [open(f"f{i}", "w") for i in range(100)]
    """, open_files=20)
    outcome = await (await executor.submit(job)).wait()
    assert outcome.ending == "failed" and outcome.exit_code not in (0, None), outcome
    assert "Too many open files" in job.stderr.read_text()
    assert len(list(job.workdir.glob("f*"))) < 20


async def test_over_the_file_size_limit_fails(executor: Executor, make_job: JobMaker) -> None:
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of the signal ending it
    job = make_job("""
        with open("big", "wb") as f:
            f.write(b"x" * (2 << 20))
    """, file_bytes=1 << 20)
    outcome = await (await executor.submit(job)).wait()
    assert outcome.ending == "failed" and outcome.exit_code not in (0, None), outcome
    assert "File too large" in job.stderr.read_text()
    assert (job.workdir / "big").stat().st_size == 1 << 20


async def test_a_file_size_signal_is_named(executor: Executor, make_job: JobMaker) -> None:
    job = make_job("""
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # as a program that does not ignore it
        open("big", "wb").write(b"x" * (2 << 20))
    """, file_bytes=1 << 20)
    outcome = await (await executor.submit(job)).wait()
    assert (outcome.ending, outcome.exit_code) == ("failed", -signal.SIGXFSZ)
    assert outcome.reason == "ended by signal 25 (SIGXFSZ): wrote a file over its 1 MiB limit"


# -- one outcome, close ---------------------------------------------------------------------------
async def test_wait_returns_the_same_outcome_every_time(
        executor: Executor, make_job: JobMaker) -> None:
    execution = await executor.submit(make_job("raise SystemExit(5)"))
    first = await execution.wait()
    await execution.stop()  # ended already: changes nothing
    assert await execution.wait() == first
    assert (first.ending, first.exit_code) == ("failed", 5)


async def test_close_stops_running_and_queued_jobs(
        executor: Executor, make_job: JobMaker) -> None:
    jobs = [make_job(SPAWNS_A_CHILD) for _ in range(executor.max_concurrency + 1)]
    executions = [await executor.submit(job) for job in jobs]
    running, queued = jobs[:-1], executions[-1]
    await eventually("the running jobs' children", lambda: all(output(j) for j in running))
    children = [int(output(j)) for j in running]
    with anyio.fail_after(10):
        await executor.close()
    outcomes = [await e.wait() for e in executions]
    assert [o.ending for o in outcomes] == ["stopped"] * len(jobs)
    assert (outcomes[-1].exit_code, queued.started_at) == (None, None)
    assert not jobs[-1].stdout.exists()
    await eventually("the children to die", lambda: not any(map(alive, children)), timeout=3)
    with pytest.raises(RuntimeError):
        await executor.submit(make_job("pass"))


# -- the local executor's own settings --------------------------------------------------------------
def test_local_is_registered_and_reads_its_url() -> None:
    assert "local" in executors.schemes()
    ex = open_executor("local://?concurrency=3")
    assert isinstance(ex, LocalExecutor) and ex.max_concurrency == 3
    assert open_executor().max_concurrency == (os.cpu_count() or 2)
    assert open_executor("local://", concurrency=5).max_concurrency == 5
    with pytest.raises(UnknownBackend):
        open_executor("nosuch://")


@pytest.mark.parametrize("url", ["local://?concurrency=two", "local://?concurrency=0",
                                 "local://?concurrency=", "local://?workers=2",
                                 "local://somehost"])
def test_a_bad_local_url_is_a_value_error_naming_the_executor(url: str) -> None:
    with pytest.raises(ValueError, match="executor") as caught:
        open_executor(url)
    assert url in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching accounts needs root")
def test_an_unknown_or_root_account_is_refused() -> None:
    with pytest.raises(ValueError, match="no user 'no-such-user'"):
        open_executor("local://?user=no-such-user")
    with pytest.raises(ValueError, match="unprivileged"):
        open_executor("local://?user=root")


async def test_a_local_job_runs_unprivileged_when_the_platform_is_root(
        make_job: JobMaker) -> None:
    executor = open_executor("local://")
    job = make_job("import os; print(os.getuid(), os.getgid(), os.getgroups())")
    (job.workdir / "bundle").mkdir()
    (job.workdir / "bundle" / "main.py").write_text("")
    try:
        outcome = await (await executor.submit(job)).wait()
    finally:
        await executor.close()
    assert outcome.ending == "succeeded", job.stderr.read_text()
    uid, gid, groups = job.stdout.read_text().split(maxsplit=2)
    if os.geteuid() == 0:
        account = pwd.getpwnam(DEFAULT_USER)
        assert (int(uid), int(gid), groups.strip()) == (account.pw_uid, account.pw_gid, "[]")
        # it owns its directory, to the bottom
        for path in (job.workdir, job.workdir / "bundle" / "main.py", job.workdir / ".tmp"):
            assert path.stat().st_uid == account.pw_uid, path
    else:
        assert int(uid) == os.getuid()


# -- the celery executor's own behaviour ------------------------------------------------------------
class Forwarder:
    """A TCP forwarder from a free local port to RabbitMQ, started when asked: a broker
    that is down at first, then comes up."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def start(self) -> None:
        import threading

        def pump(a: socket.socket, b: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := a.recv(65536):
                    b.sendall(data)
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    client, _ = self.listener.accept()
                    upstream = socket.create_connection(("127.0.0.1", 5672))
                    for a, b in ((client, upstream), (upstream, client)):
                        threading.Thread(target=pump, args=(a, b), daemon=True).start()

        self.listener.listen()
        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self.listener.close()


async def test_a_run_handed_out_while_the_broker_is_down_waits_for_it(
        celery_workers: str, make_job: JobMaker) -> None:
    forwarder = Forwarder()  # nothing listens on its port yet: the broker is "down"
    try:
        async with worker_routes() as url:
            ex = open_executor(f"celery://guest:guest@127.0.0.1:{forwarder.port}/"
                               f"?queue={celery_workers}", callback_url=url)
            try:
                job = make_job("print('made it')")
                execution = await ex.submit(job)
                await anyio.sleep(2)  # the publish retries meanwhile
                assert execution.state == "queued"
                forwarder.start()
                with anyio.fail_after(30):
                    outcome = await execution.wait()
                assert outcome.ending == "succeeded", outcome
                assert job.stdout.read_text() == "made it\n"
            finally:
                await ex.close()
    finally:
        forwarder.close()

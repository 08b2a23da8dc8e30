"""The Task Service on the celery executor, as a user runs it: a real ``pyconnector serve
--executor celery://…``, real ``pyconnector worker`` processes on RabbitMQ, the connector.
The seed's Task lines, inputs and outputs, live logs, stop, pause and resume, a worker
that dies, a queue no worker reads."""

from __future__ import annotations

import os
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import Server, celery_worker, start_server, wait_for

import pyconnector

pytestmark = pytest.mark.e2e

JOB = """\
import sys
print("args", sys.argv[1:], flush=True)
print("input", open("input/numbers.txt").read().split(), flush=True)
with open("sum.txt", "w") as out:
    out.write(str(sum(int(n) for n in open("input/numbers.txt").read().split())))
"""

TICKS = """\
import time
for i in range(int(__import__("sys").argv[1])):
    print(i, flush=True)
    time.sleep(0.1)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def celery_server(celery_queue: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Server]:
    """A platform on the celery executor with one worker taking two jobs at once."""
    url = f"celery://?queue={celery_queue}&lost_after=5"
    with celery_worker(url, concurrency=2):
        server = start_server(tmp_path_factory.mktemp("celery"), "", "--executor", url)
        yield server
        server.stop()


def test_the_seed_task_lines_run_on_celery(celery_server: Server, tmp_path: Path) -> None:
    (tmp_path / "SampleFile.py").write_text('print("hello from SampleFile")\n')
    os.chdir(tmp_path)
    conn = pyconnector.connectors(api_key=celery_server.new_key(), URL=celery_server.url)
    # --- from the guide ---
    myTask = conn.Task(projectName='testProj',jobName='testJob')  # noqa: N806
    print (myTask.deployTask(filename='SampleFile.py', runTime = 'py', overwrite_deployed=True))  # noqa: E211
    myTask.startTask()
    # --- end ---
    run = myTask.waitForRun(timeout=60)
    assert (run["state"], run["exitCode"]) == ("succeeded", 0), run
    assert myTask.getLog() == "hello from SampleFile\n"
    myTask.deleteProject()
    conn.close()


def test_inputs_go_to_the_worker_and_outputs_come_back(celery_server: Server,
                                                       tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(JOB)
    with zipfile.ZipFile(tmp_path / "in.zip", "w") as z:
        z.writestr("numbers.txt", "1 2 3 36")
    with pyconnector.connectors(api_key=celery_server.new_key(), URL=celery_server.url) as conn:
        task = conn.Task(projectName="p", jobName="sum")
        task.deployTask(filename=tmp_path / "job.py", runTime="py", args=["x", "y"],
                        input_dir_path=tmp_path / "in.zip")
        task.startTask()
        run = task.waitForRun(timeout=60)
        assert (run["state"], run["exitCode"]) == ("succeeded", 0), (run, task.getLog(
            stream="stderr"))
        assert task.getLog() == "args ['x', 'y']\ninput ['1', '2', '3', '36']\n"
        assert task.getOutputs() == [{"name": "sum.txt", "size": 2}]
        assert task.downloadOutput("sum.txt", tmp_path / "got").read_text() == "42"
        assert task.getStatus()["status"] == "COMPLETED"


def test_logs_arrive_while_the_task_runs_and_stop_ends_it(celery_server: Server,
                                                          tmp_path: Path) -> None:
    (tmp_path / "ticks.py").write_text(TICKS)
    with pyconnector.connectors(api_key=celery_server.new_key(), URL=celery_server.url) as conn:
        task = conn.Task(projectName="p", jobName="ticks")
        task.deployTask(filename=tmp_path / "ticks.py", runTime="py", args=["600"])
        task.startTask()
        wait_for("ticks in the live log", lambda: len(task.getLog().split()) >= 5, timeout=30)
        assert task.getRuns()[-1]["state"] == "running"
        task.stopTask()
        run = task.waitForRun(timeout=15)
        assert run["state"] == "stopped", run
        assert task.getStatus()["status"] == "STOPPED"
        ticks = task.getLog().split()
        assert ticks == [str(i) for i in range(len(ticks))] and len(ticks) < 600


def test_pause_and_resume_reach_the_worker(celery_server: Server, tmp_path: Path) -> None:
    (tmp_path / "ticks.py").write_text(TICKS)
    with pyconnector.connectors(api_key=celery_server.new_key(), URL=celery_server.url) as conn:
        task = conn.Task(projectName="p", jobName="pausing")
        task.deployTask(filename=tmp_path / "ticks.py", runTime="py", args=["30"])
        task.startTask()
        wait_for("the first ticks", lambda: len(task.getLog().split()) >= 3, timeout=30)
        task.pauseTask()
        assert task.getRuns()[-1]["state"] == "paused"
        time.sleep(0.5)  # a tick under way may still land
        during = task.getLog()
        time.sleep(1.5)
        assert task.getLog() == during, "the task wrote while paused"
        task.resumeTask()
        run = task.waitForRun(timeout=30)
        assert run["state"] == "succeeded", run
        assert task.getLog().split() == [str(i) for i in range(30)]


def test_a_run_whose_worker_dies_is_lost(celery_queue: str, tmp_path: Path) -> None:
    queue = celery_queue + "-dies"
    url = f"celery://?queue={queue}&lost_after=3"
    server = start_server(tmp_path / "data", "", "--executor", url)
    try:
        (tmp_path / "ticks.py").write_text("import os; print(os.getpid(), flush=True)\n"
                                           + TICKS)
        with celery_worker(url, concurrency=1) as worker, \
                pyconnector.connectors(api_key=server.new_key(), URL=server.url) as conn:
            task = conn.Task(projectName="p", jobName="orphan")
            task.deployTask(filename=tmp_path / "ticks.py", runTime="py", args=["600"])
            task.startTask()
            wait_for("the task to run", lambda: len(task.getLog().split()) >= 3, timeout=30)
            job_pid = int(task.getLog().split()[0])
            assert psutil.pid_exists(job_pid)
            os.killpg(worker.pid, signal.SIGKILL)
            # the job dies with its worker (it is in a session of its own, so not by killpg)
            wait_for("the job to die with its worker", lambda: not _alive(job_pid), timeout=5)
            run = task.waitForRun(timeout=20)
            assert run["state"] == "failed", run
            assert run["reason"] == "lost: its worker stopped reporting for 3 s", run
            assert task.getStatus()["status"] == "FAILED"
    finally:
        server.stop()


def test_a_task_nobody_takes_stays_queued_until_stopped(celery_queue: str,
                                                        tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "", "--executor",
                          f"celery://?queue={celery_queue}-unread")
    try:
        (tmp_path / "job.py").write_text("open('ran', 'w')\n")
        with pyconnector.connectors(api_key=server.new_key(), URL=server.url) as conn:
            task = conn.Task(projectName="p", jobName="waits")
            task.deployTask(filename=tmp_path / "job.py", runTime="py")
            task.startTask()
            time.sleep(1)
            assert task.getRuns()[-1]["state"] == "queued"
            task.stopTask()
            run = task.waitForRun(timeout=10)
            assert (run["state"], run["exitCode"]) == ("stopped", None), run
    finally:
        server.stop()

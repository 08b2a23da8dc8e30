"""The Task connector lines of the seed guide, verbatim and in the guide's order, against
a real ``pyconnector serve`` process; then what they leave behind: nothing of the
project is scheduled or running once ``deleteProject()`` returns."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from conftest import Server

pytestmark = pytest.mark.e2e

SAMPLE = """\
import sys
print("hello from SampleFile", sys.argv[1:])
with open("out.out", "w") as fh:
    fh.write("42\\n")
"""


def test_seed_guide_task_lines_verbatim(any_server: Server, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    key = any_server.new_key()
    (tmp_path / "SampleFile.py").write_text(SAMPLE)
    os.chdir(tmp_path)  # the guide's file names are relative to the script's directory
    import pyconnector
    conn = pyconnector.connectors(api_key=key, URL=any_server.url)

    # --- from the guide ---
    # Load Service oriented connector for Task
    myTask = conn.Task(projectName='testProj',jobName='testJob')  # noqa: N806
    print (myTask.deployTask(filename='SampleFile.py', runTime = 'py', overwrite_deployed=True))  # noqa: E211
    myTask.startTask()
    dTask = conn.DelayedTask(delayedTime='15-07-2019 12:35:56.789 IST', timeZone = 'IST', projectName=myTask.projectId, jobName='dTask112')  # noqa: E251,N806
    dTask.deployTask(filename='SampleFile.py',runTime = 'py', overwrite_deployed=True)  # noqa: E251
    dTask.rescheduleTask(delayedTime='16-07-2019 12:35:56.789 IST')
    rTask = conn.RecurrentTask(cronPatternType = 'fixed', hour='4', day='6', projectId=myTask.projectId, jobName='rTask112')  # noqa: E251,N806
    rTask.deployTask(filename='SampleFile.py',runTime = 'py', overwrite_deployed=True)  # noqa: E251
    rTask.rescheduleTask(cronPatternType='Fixed', hour='5', day='7')
    print(rTask.getJobByName(jobName = 'rTask112'))  # noqa: E251
    myTask.deleteTask()
    myTask.deleteProject()
    # --- end ---

    out = capsys.readouterr().out.splitlines()
    deployed = eval(out[0])  # noqa: S307 - the dict the guide prints
    assert deployed["jobName"] == "testJob" and deployed["status"] == "DEPLOYED"
    assert deployed["runTime"] == "py" and deployed["filename"] == "SampleFile.py"
    jobs = eval(out[1])  # noqa: S307
    assert [j["jobName"] for j in jobs] == ["rTask112"]
    assert jobs[0]["schedule"]["cron"] == "0 5 7 * *"
    assert jobs[0]["status"] == "SCHEDULED"
    # Nothing of the project is left: not the project, not its tasks, not their schedules.
    with httpx.Client(base_url=any_server.url, headers={"x-api-key": key}, timeout=10) as c:
        assert c.get("/TaskService/v1.0/projects").json() == []
        assert c.get(f"/TaskService/v1.0/projects/{myTask.projectId}").status_code == 404
    conn.close()


def test_the_seed_task_runs_and_its_output_is_kept(any_server: Server, tmp_path: Path) -> None:
    (tmp_path / "SampleFile.py").write_text(SAMPLE)
    import pyconnector
    with pyconnector.connectors(api_key=any_server.new_key(), URL=any_server.url) as conn:
        task = conn.Task(projectName="p", jobName="j")
        task.deployTask(filename=tmp_path / "SampleFile.py", runTime="py", args=["a", "b"])
        started = task.startTask()
        assert started["run"] == 1
        run = task.waitForRun(timeout=60)
        assert (run["state"], run["exitCode"]) == ("succeeded", 0), (run, any_server.output[-3000:] if isinstance(any_server.output, str) else "".join(any_server.output)[-3000:])
        assert task.getLog() == "hello from SampleFile ['a', 'b']\n"
        assert task.getOutputs() == [{"name": "out.out", "size": 3}]
        assert task.downloadOutput("out.out", tmp_path / "got").read_text() == "42\n"
        assert task.getStatus()["status"] == "COMPLETED"


PEEK = """\
import os, sys
target = sys.argv[1]
try:
    print(sorted(os.listdir(target)))
except OSError as exc:
    print("refused:", type(exc).__name__)
for name in ("HOME", "PYCONNECTOR_TASK", "AWS_SECRET_ACCESS_KEY"):
    print(name, os.environ.get(name, "-"))
"""


def test_a_task_cannot_reach_the_platforms_files(server: Server, tmp_path: Path) -> None:
    import os as _os

    if _os.geteuid() != 0:
        pytest.skip("tasks run as the platform's own account when it is not root: the data "
                    "dir is protected by running the platform as a dedicated user")
    (tmp_path / "peek.py").write_text(PEEK)
    import pyconnector
    with pyconnector.connectors(api_key=server.new_key(), URL=server.url) as conn:
        task = conn.Task(projectName="p", jobName="peek")
        task.deployTask(filename=tmp_path / "peek.py", runTime="py",
                        args=[str(server.data_dir)])
        task.startTask()
        assert task.waitForRun(timeout=60)["state"] == "succeeded"
        lines = task.getLog().splitlines()
    assert lines[0] == "refused: PermissionError", lines
    assert lines[1].startswith("HOME /") and str(server.data_dir) not in lines[1]
    assert lines[2] == f"PYCONNECTOR_TASK {task.jobId}"
    assert lines[3] == "AWS_SECRET_ACCESS_KEY -"  # nothing of the platform's environment

"""The Workflow connector lines of the seed guide, verbatim and in the guide's order, on a
fresh tenant of a real ``pyconnector serve`` process, with real ``code1.py`` (reads the
file of its input zip ``data1.zip``, writes ``out.out``) and ``code2.py`` (reads
``input/out.out``, prints it); then what they did: the instance succeeded, code2's copy
printed what code1's copy wrote, the history has both runs, and the guide's early
``recover()`` answered that there was nothing to recover instead of raising.

The guide's ``getJodId`` helper is printed with a prompt on every line (so it is not
Python); it is defined here with the same name and logic. The guide's task ids (P9909,
T123, T124) do not exist on a fresh platform: the Task connector makes them, with the
ids as names, and warns (docs/workflow.md)."""

from __future__ import annotations

import ast
import code
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import Server

pytestmark = pytest.mark.e2e

CODE1 = """\
import os
name = os.listdir("input")[0]
text = open(os.path.join("input", name)).read().strip()
print("code1 read", name, flush=True)
with open("out.out", "w") as fh:
    fh.write(f"code1 saw {text!r} in {name}\\n")
"""
CODE2 = """\
print(open("input/out.out").read(), end="")
"""


def _spy(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[Any]:
    """Record what ``cls.name`` returns (the guide's REPL shows it; a script drops it)."""
    answers: list[Any] = []
    real = getattr(cls, name)

    def spy(self: Any, *args: Any, **kw: Any) -> Any:
        answers.append(real(self, *args, **kw))
        return answers[-1]

    monkeypatch.setattr(cls, name, spy)
    return answers


def test_seed_guide_workflow_lines_verbatim(any_server: Server, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            recwarn: pytest.WarningsRecorder) -> None:
    (tmp_path / "code1.py").write_text(CODE1)
    (tmp_path / "code2.py").write_text(CODE2)
    with zipfile.ZipFile(tmp_path / "data1.zip", "w") as z:
        z.writestr("data1.txt", "temperature 21.5\n")
    os.chdir(tmp_path)  # the guide's file names are relative to the script's directory
    import pyconnector
    from pyconnector.workflow import WorkflowProcess
    statuses = _spy(monkeypatch, WorkflowProcess, "status")
    recovered = _spy(monkeypatch, WorkflowProcess, "recover")
    conn = pyconnector.connectors(api_key=any_server.new_key(), URL=any_server.url)

    # --- from the guide ---
    # Load Service oriented connector for Workflow
    t1 = conn.Task(projectId='P9909',jobId='T123')
    res = t1.deployTask(filename='code1.py', runTime = 'py', input_dir_path='data1.zip')  # noqa: E251
    t2 = conn.Task(projectId='P9909',jobId='T124')
    res = t2.deployTask(filename='code2.py', runTime = 'py')  # noqa: E251
    res = t2.externalFileLinking(externalProjectIds=[t1.projectId], externalTaskIds=[t1.jobId], fileNames = ['out.out'])  # noqa: E251
    wf = conn.Workflow(taskList=[(t1,t2)], processName='procTest1', processVersion='verTest1')
    wf_proc = wf.preInitiate()
    res = wf_proc.getMapping()
    def getJodId(res,jobId):  # noqa: E306,N802,N803 - the guide's helper, its prompts fixed
        response = res['taskIds']
        for res in response:  # noqa: B020 - the guide reuses res
            if res['baseTaskId'] == jobId:
                return res['copiedTaskId']
    t3 = conn.Task(projectId=t2.projectId,jobId=getJodId(res,t2.jobId))
    res = t3.externalFileLinking(externalProjectIds=[t2.projectId], externalTaskIds=[getJodId(res,t1.jobId)], fileNames = ['out.out'])  # noqa: E251
    wf_proc.status()
    wf_proc.initiate()
    wf.selectRecoveryMode(True)
    wf_proc.recover()
    wf_proc.getHistory()
    # --- end ---

    # The made-up ids were made as names, each with a warning naming the real id.
    assert (t1.projectName, t1.jobName, t2.jobName) == ("P9909", "T123", "T124")
    assert t2.projectId == t1.projectId
    said = " ".join(str(w.message) for w in recwarn.list)
    for given, real, name in (("P9909", t1.projectId, "P9909"), ("T123", t1.jobId, "T123"),
                              ("T124", t2.jobId, "T124")):
        if given != real:  # (an id the platform happened to give is no made-up one)
            assert f"'{given}' is {real} '{name}'" in said, said
    # status() before initiate(): the prepared instance, each task and its copy.
    assert statuses[0]["state"] == "PREPARED"
    assert [(s["baseTaskId"], s["state"]) for s in statuses[0]["tasks"]] == [
        (t1.jobId, "PENDING"), (t2.jobId, "PENDING")]
    assert {s["copiedTaskId"] for s in statuses[0]["tasks"]} == {
        getJodId(wf_proc.getMapping(), t1.jobId), t3.jobId}
    # recover() right after initiate(): a clear answer, not an exception.
    assert len(recovered) == 1 and recovered[0]["code"] == 200
    assert "nothing to recover" in recovered[0]["message"]
    assert recovered[0]["state"] in ("RUNNING", "SUCCEEDED")

    end = wf_proc.waitForEnd(timeout=120)
    assert end["state"] == "SUCCEEDED", end
    assert [s["state"] for s in end["tasks"]] == ["SUCCEEDED", "SUCCEEDED"]
    assert t3.getLog() == "code1 saw 'temperature 21.5' in data1.txt\n"
    history = wf_proc.getHistory()
    assert [(h["baseTaskId"], h["copiedTaskId"], h["state"], h["exitCode"])
            for h in history] == [
        (t1.jobId, getJodId(wf_proc.getMapping(), t1.jobId), "succeeded", 0),
        (t2.jobId, t3.jobId, "succeeded", 0)]
    assert all(h["startedOn"] and h["endedOn"] for h in history)
    # The originals did not run: the instance ran copies.
    assert t1.getRuns() == [] and t2.getRuns() == []
    # A second recover() of the succeeded instance: still nothing to do.
    assert "nothing to recover" in wf_proc.recover()["message"]
    assert wf.delete()["code"] == 200
    t1.deleteProject()
    conn.close()


#: the guide's lines as a REPL session takes them (the helper's body indented, a blank
#: line closing it)
REPL = """\
t1 = conn.Task(projectId='P9909',jobId='T123')
res = t1.deployTask(filename='code1.py', runTime = 'py', input_dir_path='data1.zip')
t2 = conn.Task(projectId='P9909',jobId='T124')
res = t2.deployTask(filename='code2.py', runTime = 'py')
res = t2.externalFileLinking(externalProjectIds=[t1.projectId], externalTaskIds=[t1.jobId], fileNames = ['out.out'])
wf = conn.Workflow(taskList=[(t1,t2)], processName='procTest1', processVersion='verTest1')
wf_proc = wf.preInitiate()
res = wf_proc.getMapping()
def getJodId(res,jobId):
    response = res['taskIds']
    for res in response:
        if res['baseTaskId'] == jobId:
            return res['copiedTaskId']

t3 = conn.Task(projectId=t2.projectId,jobId=getJodId(res,t2.jobId))
res = t3.externalFileLinking(externalProjectIds=[t2.projectId], externalTaskIds=[getJodId(res,t1.jobId)], fileNames = ['out.out'])
wf_proc.status()
wf_proc.initiate()
wf.selectRecoveryMode(True)
wf_proc.recover()
wf_proc.getHistory()
"""


def test_the_guides_bare_calls_print_something_useful_in_a_repl(
        server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        recwarn: pytest.WarningsRecorder) -> None:
    """In a REPL (as the guide is written) each bare call prints its answer."""
    (tmp_path / "code1.py").write_text(CODE1)
    (tmp_path / "code2.py").write_text(CODE2)
    with zipfile.ZipFile(tmp_path / "data1.zip", "w") as z:
        z.writestr("data1.txt", "temperature 21.5\n")
    os.chdir(tmp_path)
    with server.connector() as conn:
        console = code.InteractiveConsole({"conn": conn})
        for line in REPL.splitlines():
            console.push(line)
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        shown = [ast.literal_eval(line) for line in out.splitlines()]
        assert len(shown) == 5, out  # status, initiate, selectRecoveryMode, recover, history
        status, initiated, definition, recovered, history = shown
        assert status["state"] == "PREPARED" and status["processName"] == "procTest1"
        assert [s["state"] for s in status["tasks"]] == ["PENDING", "PENDING"]
        assert initiated["message"] == f"instance {status['instanceId']} initiated"
        assert definition["recoveryMode"] is True
        assert "nothing to recover" in recovered["message"]
        assert isinstance(history, list)
        wf_proc = console.locals["wf_proc"]
        assert wf_proc.waitForEnd(timeout=120)["state"] == "SUCCEEDED"
        assert console.locals["t3"].getLog() == "code1 saw 'temperature 21.5' in data1.txt\n"

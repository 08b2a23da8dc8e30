"""The Workflow connector's schedule against a real platform: ``wf.schedule(...)`` with the
RecurrentTask options, replaced, refused naming the field, and ``wf.unschedule()``.
(Slots firing instances are tested in-process: tests/server/test_workflow_schedule.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyconnector


@pytest.fixture
def conn(server: Any) -> Iterator[Any]:
    with server.connector() as c:
        yield c


def test_schedule_replace_refuse_and_unschedule(conn: Any, tmp_path: Path) -> None:
    code = tmp_path / "main.py"
    code.write_text("print('step')\n")
    project = f"wf-sched-{uuid.uuid4().hex[:6]}"
    tasks = []
    for name in ("a", "b"):
        task = conn.Task(projectName=project, jobName=name)
        task.deployTask(code, runTime="py")
        tasks.append(task)
    wf = conn.Workflow(taskList=[(tasks[0], tasks[1])], processName="nightly",
                       processVersion="v1")
    assert wf.definition["schedule"] is None
    got = wf.schedule(hour=4, day=6, timeZone="IST", recurrenceLimit=3)
    assert got["schedule"]["cron"] == "0 4 6 * *"  # fixed, the default without cron
    assert (got["schedule"]["timeZone"], got["schedule"]["recurrenceLimit"]) == ("IST", 3)
    assert got["schedule"]["fired"] == 0 and got["schedule"]["nextRun"].endswith(" UTC")
    assert wf.definition is got
    # patterns that do not fire during the test (the session's platform is running)
    assert wf.schedule(cron="30 4 6 1 *")["schedule"]["cron"] == "30 4 6 1 *"
    assert wf.schedule("interval", month=6)["schedule"]["cron"] == "0 0 1 */6 *"
    with pytest.raises(pyconnector.errors.BadRequestError) as info:
        wf.schedule(hour=24)
    assert info.value.field == "hour" and "0-23" in info.value.message
    with pytest.raises(pyconnector.errors.BadRequestError) as info:
        wf.schedule(cron="0 4 6 1 *", recurrenceLimit=-1)
    assert info.value.field == "recurrenceLimit"
    assert wf.getDefinition()["schedule"]["cron"] == "0 0 1 */6 *"  # unchanged
    # the same definition read by name and version sees the schedule
    again = conn.Workflow(processName="nightly", processVersion="v1")
    assert again.definition["schedule"]["cron"] == "0 0 1 */6 *"
    assert again.unschedule()["schedule"] is None
    assert wf.getDefinition()["schedule"] is None
    assert wf.getInstances() == []  # nothing fired meanwhile
    wf.delete()
    tasks[0].deleteProject()

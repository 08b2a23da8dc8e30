"""The Task Service connector: ``conn.Task(...)``, ``conn.DelayedTask(...)``,
``conn.RecurrentTask(...)`` (docs/tasks.md).

A task object stands for one task of one project, found by id or by name (the guide
passes ``projectName=myTask.projectId``), and made when it does not exist yet. Made with
ids that do not exist (the guide's ``conn.Task(projectId='P9909', jobId='T123')`` on a
fresh platform), it makes them with the ids as their names (project ``'P9909'``, task
``'T123'``) and warns naming the real ids, which the object then carries (``projectId``,
``jobId``); the same ids again find those by name.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any, cast
from urllib.parse import quote

from . import errors
from .http import HTTPCore
from .routing import render

BASE = "/TaskService/v1.0"
ENDED = ("succeeded", "failed", "stopped", "timed_out", "out_of_memory", "cpu_limit", "lost")
JSONObject = dict[str, Any]


def _q(part: str) -> str:
    return quote(part, safe="")


def _outside() -> int:
    """The ``stacklevel`` that points a warning given in this package's caller at the
    user's line (through connectors.py and subclasses' ``__init__``)."""
    import sys

    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: FrameType | None = sys._getframe(2)  # the caller of the function that warns
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        frame, level = frame.f_back, level + 1
    return level


class Task:
    """One task of one project: deploy it, run it, read its runs (see the module)."""

    def __init__(self, http: HTTPCore, projectName: str | None = None,  # noqa: N803
                 jobName: str | None = None, projectId: str | None = None,  # noqa: N803
                 jobId: str | None = None) -> None:  # noqa: N803
        self.http = http
        project = self._project(projectId, projectName)
        self.projectId: str = project["projectId"]  # noqa: N815 - the guide's names
        self.projectName: str = project["projectName"]  # noqa: N815
        task = self._task(jobId, jobName)
        self.jobId: str = task["jobId"]  # noqa: N815
        self.jobName: str = task["jobName"]  # noqa: N815
        # ids given that are no ids of this tenant's were taken as names (see the module)
        named = [f"{kind} {given!r} is {real} {name!r}" for kind, given, real, name in (
            ("project", projectId, self.projectId, self.projectName),
            ("task", jobId, self.jobId, self.jobName)) if given is not None and given != real]
        if named:
            warnings.warn(f"{type(self).__name__}: no such id, so the id was used as a name: "
                          f"{'; '.join(named)}. Use the real ids from now on (.projectId, "
                          ".jobId).", UserWarning, stacklevel=_outside())

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.jobId} {self.jobName!r} of {self.projectId} "
                f"{self.projectName!r}>")

    # -- finding or making the project and the task -----------------------------------
    def _project(self, project_id: str | None, name: str | None) -> JSONObject:
        ref = project_id or name
        if not ref or not isinstance(ref, str):
            raise errors.ConfigError("Task: give projectName or projectId")
        try:
            return cast(JSONObject, self.http.request("GET", f"{BASE}/projects/{_q(ref)}"))
        except errors.NotFoundError:
            pass
        try:  # a missing id is made as a name (Task.__init__ warns)
            return cast(JSONObject, self.http.request("POST", f"{BASE}/projects",
                                                      json={"projectName": name or ref}))
        except errors.ConflictError:  # made meanwhile by another script
            return cast(JSONObject, self.http.request("GET", f"{BASE}/projects/{_q(ref)}"))

    def _task(self, job_id: str | None, name: str | None) -> JSONObject:
        ref = job_id or name
        if not ref or not isinstance(ref, str):
            raise errors.ConfigError(f"{type(self).__name__}: give jobName or jobId")
        try:
            return cast(JSONObject, self.http.request("GET", self._path(ref)))
        except errors.NotFoundError:
            pass
        return cast(JSONObject, self.http.request(
            "POST", f"{BASE}/projects/{_q(self.projectId)}/tasks",
            json={"jobName": name or ref, "type": self.kind}))

    kind = "task"

    def _path(self, ref: str | None = None, *rest: str) -> str:
        path = f"{BASE}/projects/{_q(self.projectId)}/tasks/{_q(ref or self.jobId)}"
        return "/".join([path, *rest])

    # -- deploy -------------------------------------------------------------------------
    def deployTask(self, filename: str | os.PathLike[str], runTime: str,  # noqa: N802,N803
                   overwrite_deployed: bool = False, args: list[str] | None = None,
                   dependency_zip: str | os.PathLike[str] | None = None,
                   input_dir_path: str | os.PathLike[str] | None = None) -> JSONObject:
        """Deploy ``filename`` to run with ``runTime`` (py, js, java, c, cpp, spark):
        ``args`` are its runtime arguments, ``dependency_zip`` files it needs (unpacked
        beside it), ``input_dir_path`` a zip of input files (unpacked into ``input/``).
        ``overwrite_deployed`` replaces an earlier deploy (else ConflictError). Returns
        the task as deployed."""
        with ExitStack() as files:
            parts: dict[str, Any] = {"file": (Path(filename).name, files.enter_context(
                open(filename, "rb")))}
            for key, path in (("dependencies", dependency_zip), ("inputs", input_dir_path)):
                if path is not None:
                    parts[key] = (Path(path).name, files.enter_context(open(path, "rb")))
            data = {"runTime": runTime, "overwrite": "true" if overwrite_deployed else "false",
                    "args": json.dumps(list(args or []))}
            return cast(JSONObject, self.http.request("POST", self._path(None, "deploy"),
                                                      files=parts, data=data))

    # -- running ------------------------------------------------------------------------
    def _act(self, action: str) -> JSONObject:
        return cast(JSONObject, self.http.request("POST", self._path(None, action)))

    def startTask(self) -> JSONObject:  # noqa: N802
        """Run the task now; the answer names the run (``run``)."""
        return self._act("start")

    def stopTask(self) -> JSONObject:  # noqa: N802
        """Stop its running processes (a schedule goes on)."""
        return self._act("stop")

    def cancelTask(self) -> JSONObject:  # noqa: N802
        """Stop its processes and end its schedule."""
        return self._act("cancel")

    def pauseTask(self) -> JSONObject:  # noqa: N802
        """Suspend its running processes and its schedule."""
        return self._act("pause")

    def resumeTask(self) -> JSONObject:  # noqa: N802
        """Continue what :meth:`pauseTask` suspended."""
        return self._act("resume")

    def restartTask(self) -> JSONObject:  # noqa: N802
        """Stop its processes and run it again."""
        return self._act("restart")

    def deleteTask(self) -> JSONObject:  # noqa: N802
        """Delete the task (a running one is stopped first)."""
        return cast(JSONObject, self.http.request("DELETE", self._path()))

    def deleteProject(self) -> JSONObject:  # noqa: N802
        """Delete the task's project with every task in it (runs stopped, schedules
        ended)."""
        return cast(JSONObject, self.http.request(
            "DELETE", f"{BASE}/projects/{_q(self.projectId)}"))

    # -- reading ------------------------------------------------------------------------
    def getStatus(self) -> JSONObject:  # noqa: N802
        """The task: deploy, schedule, ``status``."""
        return cast(JSONObject, self.http.request("GET", self._path()))

    def getJobByName(self, jobName: str, responseType: str = "json") -> Any:  # noqa: N802,N803
        """The tasks of this project called ``jobName``."""
        data = self.http.request("GET", f"{BASE}/projects/{_q(self.projectId)}/tasks",
                                 params={"jobName": jobName})
        return render(data, responseType)

    def getTasks(self, responseType: str = "json") -> Any:  # noqa: N802,N803
        """Every task of this project."""
        return render(self.http.request("GET", f"{BASE}/projects/{_q(self.projectId)}/tasks"),
                      responseType)

    def getProjects(self, responseType: str = "json") -> Any:  # noqa: N802,N803
        """The tenant's projects."""
        return render(self.http.request("GET", f"{BASE}/projects"), responseType)

    def getRuns(self, responseType: str = "json") -> Any:  # noqa: N802,N803
        """The task's runs, oldest first (json, table, dataframe or csv)."""
        return render(self.http.request("GET", self._path(None, "runs")), responseType)

    def _last_run(self, run: int | None) -> int:
        if run is not None:
            return run
        runs = cast(list[JSONObject], self.http.request("GET", self._path(None, "runs")))
        if not runs:
            raise errors.PyConnectorError(f"task {self.jobId} has not run yet")
        return int(runs[-1]["run"])

    def waitForRun(self, run: int | None = None, timeout: float = 300) -> JSONObject:  # noqa: N802
        """Wait until the run (default: the latest) has ended; the run."""
        number = self._last_run(run)
        deadline = time.monotonic() + timeout
        while True:
            got = cast(JSONObject, self.http.request("GET", self._path(None, "runs",
                                                                      str(number))))
            if got["state"] in ENDED:
                return got
            if time.monotonic() > deadline:
                raise errors.TimeoutError(f"run {number} of {self.jobId} still {got['state']} "
                                          f"after {timeout:g} s")
            time.sleep(0.1)

    def getLog(self, run: int | None = None, stream: str = "stdout") -> str:  # noqa: N802
        """A run's stdout (or ``stream='stderr'``) as written so far."""
        number = self._last_run(run)
        return self.http.get_bytes(self._path(None, "runs", str(number), "log"),
                                   params={"stream": stream}).decode("utf-8", "replace")

    def followLog(self, run: int | None = None, stream: str = "stdout",  # noqa: N802
                  poll: float = 0.2) -> Any:
        """Yield a run's log as it grows, until the run ends."""
        number = self._last_run(run)
        offset = 0
        while True:
            state = cast(JSONObject, self.http.request(
                "GET", self._path(None, "runs", str(number))))["state"]
            chunk = self.http.get_bytes(self._path(None, "runs", str(number), "log"),
                                        params={"stream": stream, "offset": offset})
            if chunk:
                offset += len(chunk)
                yield chunk.decode("utf-8", "replace")
            elif state in ENDED:
                return
            else:
                time.sleep(poll)

    def getOutputs(self, run: int | None = None) -> list[JSONObject]:  # noqa: N802
        """The files a run made: name and size of each."""
        number = self._last_run(run)
        return cast(list[JSONObject], self.http.request(
            "GET", self._path(None, "runs", str(number), "outputs")))

    def downloadOutput(self, name: str, target: str | os.PathLike[str] | None = None,  # noqa: N802
                       run: int | None = None) -> Path:
        """Save output file ``name`` of a run (default: the latest) to ``target`` (default:
        its name in the current directory); the path written."""
        number = self._last_run(run)
        data = self.http.get_bytes(self._path(None, "runs", str(number), "outputs",
                                              *[_q(p) for p in name.split("/")]))
        out = Path(target) if target is not None else Path(Path(name).name)
        out.write_bytes(data)
        return out

    # -- copies and links ---------------------------------------------------------------
    def copyTask(self, projectId: str | None = None, jobName: str | None = None) -> Task:  # noqa: N802,N803
        """Copy this task (deploy, schedule, links) into ``projectId`` (default: its own)
        as ``jobName`` (default: ``<name>-copy``); the copy."""
        made = cast(JSONObject, self.http.request(
            "POST", self._path(None, "copy"), json={"projectId": projectId,
                                                     "jobName": jobName}))
        return Task(self.http, projectId=made["projectId"], jobId=made["jobId"])

    def externalFileLinking(self, externalProjectIds: list[str],  # noqa: N802,N803
                            externalTaskIds: list[str], fileNames: list[str]) -> JSONObject:  # noqa: N803
        """At each run, place ``fileNames`` from the latest successful runs of
        ``externalTaskIds`` (in ``externalProjectIds``) in this task's ``input/``."""
        return cast(JSONObject, self.http.request("PUT", self._path(None, "links"), json={
            "externalProjectIds": list(externalProjectIds),
            "externalTaskIds": list(externalTaskIds), "fileNames": list(fileNames)}))


class _Scheduled(Task):
    """A task with a schedule, set when it is deployed (and by ``rescheduleTask``)."""

    _schedule: JSONObject

    def deployTask(self, filename: str | os.PathLike[str], runTime: str,  # noqa: N802,N803
                   overwrite_deployed: bool = False, args: list[str] | None = None,
                   dependency_zip: str | os.PathLike[str] | None = None,
                   input_dir_path: str | os.PathLike[str] | None = None) -> JSONObject:
        """Deploy (as :meth:`Task.deployTask`), then schedule it; the task, with the
        schedule's answer under ``scheduled`` (a ``warning`` for a time in the past)."""
        super().deployTask(filename, runTime, overwrite_deployed, args, dependency_zip,
                           input_dir_path)
        scheduled = self._put_schedule(self._schedule)
        return {**self.getStatus(), "scheduled": scheduled}  # the task as now scheduled

    def _put_schedule(self, body: JSONObject) -> JSONObject:
        return cast(JSONObject, self.http.request("PUT", self._path(None, "schedule"),
                                                  json=body))


class DelayedTask(_Scheduled):
    """A task that runs once at ``delayedTime`` (in ``timeZone`` unless the time names
    its zone): ``'15-07-2019 12:35:56.789 IST'``, ISO 8601, or epoch ms. A time in the
    past runs at once, with a warning in the answer."""

    kind = "delayed"

    def __init__(self, http: HTTPCore, delayedTime: str | int,  # noqa: N803
                 timeZone: str | None = None, projectName: str | None = None,  # noqa: N803
                 jobName: str | None = None, projectId: str | None = None,  # noqa: N803
                 jobId: str | None = None) -> None:  # noqa: N803
        self._schedule = {"delayedTime": delayedTime, "timeZone": timeZone}
        super().__init__(http, projectName, jobName, projectId, jobId)

    def rescheduleTask(self, delayedTime: str | int,  # noqa: N802,N803
                       timeZone: str | None = None) -> JSONObject:  # noqa: N803
        """Move the run to ``delayedTime`` (the zone given before, unless named)."""
        self._schedule = {"delayedTime": delayedTime,
                          "timeZone": timeZone or self._schedule.get("timeZone")}
        return self._put_schedule(self._schedule)


class RecurrentTask(_Scheduled):
    """A task that runs on a cron pattern: ``cronPatternType`` ``fixed`` (the fields
    given are fixed: ``hour='4', day='6'`` is 04:00 on the 6th of each month),
    ``interval`` (every N of the one field given) or ``cron`` (``cron='*/5 * * * *'``);
    ``recurrenceLimit`` runs at most (0: for ever); fields are read in ``timeZone``."""

    kind = "recurrent"

    def __init__(self, http: HTTPCore, cronPatternType: str = "fixed",  # noqa: N803
                 minute: str | int | None = None, hour: str | int | None = None,
                 day: str | int | None = None, month: str | int | None = None,
                 weekday: str | int | None = None, cron: str | None = None,
                 recurrenceLimit: int = 0, timeZone: str | None = None,  # noqa: N803
                 projectName: str | None = None, jobName: str | None = None,  # noqa: N803
                 projectId: str | None = None, jobId: str | None = None) -> None:  # noqa: N803
        self._schedule = _pattern(cronPatternType, minute, hour, day, month, weekday, cron,
                                  recurrenceLimit, timeZone)
        super().__init__(http, projectName, jobName, projectId, jobId)

    def rescheduleTask(self, cronPatternType: str = "fixed",  # noqa: N802,N803
                       minute: str | int | None = None, hour: str | int | None = None,
                       day: str | int | None = None, month: str | int | None = None,
                       weekday: str | int | None = None, cron: str | None = None,
                       recurrenceLimit: int | None = None,  # noqa: N803
                       timeZone: str | None = None) -> JSONObject:  # noqa: N803
        """A new pattern (the limit and zone given before, unless given again)."""
        self._schedule = _pattern(
            cronPatternType, minute, hour, day, month, weekday, cron,
            self._schedule["recurrenceLimit"] if recurrenceLimit is None else recurrenceLimit,
            timeZone or self._schedule.get("timeZone"))
        return self._put_schedule(self._schedule)


def _pattern(kind: str, minute: Any, hour: Any, day: Any, month: Any, weekday: Any,
             cron: str | None, limit: int, tz: str | None) -> JSONObject:
    body = {"cronPatternType": kind, "minute": minute, "hour": hour, "day": day,
            "month": month, "weekday": weekday, "cron": cron, "recurrenceLimit": limit,
            "timeZone": tz}
    return {k: v for k, v in body.items() if v is not None}

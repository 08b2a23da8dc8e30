"""The Workflow Service connector: ``conn.Workflow(...)`` and the instances it prepares
(docs/workflow.md).

A :class:`Workflow` is one process definition: a process name, a version and the edges
``(upstream, downstream)`` between tasks of the Task Service (Task objects or their ids).
Making one saves the definition (the same name, version and graph again is the saved one;
another graph under a saved name and version is a ConflictError). :meth:`Workflow.preInitiate`
prepares an instance, a :class:`WorkflowProcess`: a copy of each task, linked like the
originals, that runs once :meth:`WorkflowProcess.initiate` is called.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, cast, overload
from urllib.parse import quote

from . import errors
from .http import HTTPCore

if TYPE_CHECKING:  # formats loads pandas: only reads asked as tables or frames need it
    import pandas as pd

    from .formats import JSONRecords, ResponseType, TextType
    from .tasks import Task

BASE: Final = "/WorkflowService/v1.0"
PAGE: Final = 1000  # instances a request asks for: the most the platform gives at once
#: an instance's states once nothing more will run (until ``recover()``)
SETTLED: Final = ("SUCCEEDED", "FAILED", "ABORTED")
JSONObject = dict[str, Any]
Edge: TypeAlias = "tuple[Task | str, Task | str]"
"""One edge of a workflow: (upstream, downstream), each a Task or a task id."""


def _render(data: Any, response_type: str, rows: Callable[[Any], Any] | None = None) -> Any:
    """:func:`pyconnector.formats.render`, loaded (with pandas) when first used."""
    from .formats import render

    return render(data, response_type, rows)


def _q(part: str) -> str:
    return quote(part, safe="")


def _node(value: Any, where: str) -> str:
    """A task id from a Task object (its ``jobId``) or a string (``'T3'``, ``'start'``,
    ``'end'``)."""
    job_id = getattr(value, "jobId", value)
    if not isinstance(job_id, str) or not job_id:
        raise errors.ConfigError(f"{where}: a Task or a task id ('T1'), not {value!r}")
    return job_id


def _links(task_list: Any) -> list[dict[str, str]]:
    if isinstance(task_list, (str, bytes)) or not isinstance(task_list, Sequence) \
            or not task_list:
        raise errors.ConfigError("taskList: a non-empty list of edges (upstream, downstream), "
                                 f"not {task_list!r}")
    links = []
    for i, edge in enumerate(task_list):
        if isinstance(edge, (str, bytes)) or not isinstance(edge, Sequence) or len(edge) != 2:
            raise errors.ConfigError(f"taskList[{i}]: an edge is a pair (upstream, "
                                     f"downstream), not {edge!r}")
        links.append({"source": _node(edge[0], f"taskList[{i}][0]"),
                      "destination": _node(edge[1], f"taskList[{i}][1]")})
    return links


def _step_rows(instance: Any) -> Any:
    """An instance (or a list of them) as one row per step, for tables and frames."""
    items = instance if isinstance(instance, list) else [instance]
    return [{"instanceId": i["instanceId"], "instanceState": i["state"], **step}
            for i in items for step in i.get("tasks", [])]


def _instance_rows(instances: Any) -> Any:
    """Instances as rows, their steps summed up as ``T3 SUCCEEDED, T4 RUNNING``."""
    return [{**{k: v for k, v in i.items() if k != "tasks"},
             "tasks": ", ".join(f"{s['copiedTaskId']} {s['state']}" for s in i["tasks"])}
            for i in instances]


class Workflow:
    """One process definition of the Workflow Service (see the module).

    ``taskList`` is a list of edges ``(upstream, downstream)``: a downstream task runs once
    all its upstream tasks have succeeded; any DAG (sequences, fan-out, fan-in). Without
    ``taskList`` the definition saved under ``processName`` and ``processVersion`` is used.
    """

    def __init__(self, http: HTTPCore, taskList: Sequence[Edge] | None = None,  # noqa: N803
                 processName: str | None = None,  # noqa: N803
                 processVersion: str | None = None) -> None:  # noqa: N803
        if not isinstance(processName, str) or not processName:
            raise errors.ConfigError("Workflow: give processName")
        if not isinstance(processVersion, str) or not processVersion:
            raise errors.ConfigError("Workflow: give processVersion")
        self.http = http
        self.processName: str = processName  # noqa: N815 - the guide's names
        self.processVersion: str = processVersion  # noqa: N815
        if taskList is None:
            self.definition: JSONObject = self.getDefinition()
        else:
            self.definition = cast(JSONObject, http.request("POST", f"{BASE}/definitions", json={
                "processName": processName, "processVersion": processVersion,
                "links": _links(taskList)}))

    def __repr__(self) -> str:
        edges = " ".join(f"({link['source']},{link['destination']})"
                         for link in self.definition.get("links", []))
        return f"<Workflow {self.processName!r} version {self.processVersion!r}: {edges}>"

    def _path(self, *rest: str) -> str:
        return "/".join([f"{BASE}/definitions/{_q(self.processName)}/"
                         f"{_q(self.processVersion)}", *rest])

    def getDefinition(self) -> JSONObject:  # noqa: N802
        """The definition as saved: its tasks, links, recovery mode, schedule."""
        self.definition = cast(JSONObject, self.http.request("GET", self._path()))
        return self.definition

    def preInitiate(self) -> WorkflowProcess:  # noqa: N802
        """Prepare an instance: a copy of each task of the definition, linked like the
        originals (``getMapping()`` names them). It runs when ``initiate()`` is called."""
        made = cast(JSONObject, self.http.request("POST", self._path("instances")))
        return WorkflowProcess(self.http, made["instanceId"], made)

    def selectRecoveryMode(self, recoveryMode: bool = True) -> JSONObject:  # noqa: N802,N803
        """Turn recovery mode on (or off): with it on, ``recover()`` re-runs the failed and
        never-run tasks of a failed or aborted instance. The definition as now saved."""
        if not isinstance(recoveryMode, bool):
            raise errors.ConfigError(f"recoveryMode: True or False, not {recoveryMode!r}")
        self.definition = cast(JSONObject, self.http.request(
            "PUT", self._path("recovery"), json={"recoveryMode": recoveryMode}))
        return self.definition

    def schedule(self, cronPatternType: str | None = None,  # noqa: N803
                 minute: str | int | None = None, hour: str | int | None = None,
                 day: str | int | None = None, month: str | int | None = None,
                 weekday: str | int | None = None, cron: str | None = None,
                 recurrenceLimit: int = 0, timeZone: str | None = None) -> JSONObject:  # noqa: N803
        """Prepare and initiate an instance at each slot of a cron pattern, with the
        options of ``RecurrentTask``: ``cronPatternType`` ``fixed`` (``hour=4, day=6``:
        04:00 on the 6th), ``interval`` (``hour=2``: every 2 hours) or ``cron``
        (``cron='*/30 * * * *'``; the default when ``cron`` is given, else ``fixed``);
        at most ``recurrenceLimit`` instances (0: for ever), fields read in ``timeZone``
        (default UTC). Replaces a schedule set before. The definition as now saved (its
        ``schedule``: the pattern, the slots fired, ``nextRun``)."""
        from .tasks import _pattern

        kind = cronPatternType or ("cron" if cron is not None else "fixed")
        self.definition = cast(JSONObject, self.http.request(
            "PUT", self._path("schedule"), json=_pattern(
                kind, minute, hour, day, month, weekday, cron, recurrenceLimit, timeZone)))
        return self.definition

    def unschedule(self) -> JSONObject:
        """End the schedule (instances already made go on). The definition as now saved."""
        self.definition = cast(JSONObject, self.http.request("DELETE", self._path("schedule")))
        return self.definition

    @overload
    def getInstances(self, responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getInstances(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getInstances(self, responseType: TextType) -> str: ...

    def getInstances(self, responseType: ResponseType = "json"  # noqa: N802,N803
                     ) -> JSONRecords | pd.DataFrame | str:
        """This definition's instances, oldest first (json, table, dataframe or csv; in a
        table each instance's tasks are summed up in one column)."""
        data: list[Any] = []
        while True:  # the platform answers a page at a time
            page = cast(list[Any], self.http.request("GET", f"{BASE}/instances", params={
                "processName": self.processName, "processVersion": self.processVersion,
                "limit": PAGE, "offset": len(data)}))
            data += page
            if len(page) < PAGE:
                break
        return cast("JSONRecords | pd.DataFrame | str",
                    _render(data, responseType, _instance_rows))

    def getInstance(self, instanceId: str) -> WorkflowProcess:  # noqa: N802,N803
        """An instance of this definition by id (``'I3'``)."""
        got = cast(JSONObject, self.http.request("GET", f"{BASE}/instances/{_q(instanceId)}"))
        if (got["processName"], got["processVersion"]) != (self.processName,
                                                            self.processVersion):
            raise errors.ConfigError(f"{instanceId} is an instance of {got['processName']!r} "
                                     f"version {got['processVersion']!r}, not of this "
                                     "definition")
        return WorkflowProcess(self.http, got["instanceId"], got)

    def delete(self) -> JSONObject:
        """Delete the definition with its instances (running ones are stopped) and their
        copied tasks; the original tasks stay."""
        return cast(JSONObject, self.http.request("DELETE", self._path()))


class WorkflowProcess:
    """One instance of a process definition (``wf.preInitiate()``): run it, pause, resume,
    abort or recover it, read its state and the runs of its tasks."""

    def __init__(self, http: HTTPCore, instanceId: str,  # noqa: N803
                 view: JSONObject | None = None) -> None:
        self.http = http
        self.instanceId = instanceId  # noqa: N815 - the service's name
        self.last: JSONObject | None = view  # the instance as last read

    def __repr__(self) -> str:
        if self.last is None:
            return f"<WorkflowProcess {self.instanceId}>"
        v = self.last
        return (f"<WorkflowProcess {self.instanceId} of {v['processName']!r} version "
                f"{v['processVersion']!r}: {v['state']}>")

    def _path(self, *rest: str) -> str:
        return "/".join([f"{BASE}/instances/{_q(self.instanceId)}", *rest])

    def _read(self) -> JSONObject:
        self.last = cast(JSONObject, self.http.request("GET", self._path()))
        return self.last

    def _act(self, action: str) -> JSONObject:
        return cast(JSONObject, self.http.request("POST", self._path(action)))

    # -- reading ------------------------------------------------------------------------
    @overload
    def status(self, responseType: Literal["json"] = "json") -> JSONObject: ...
    @overload
    def status(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def status(self, responseType: TextType) -> str: ...

    def status(self, responseType: ResponseType = "json"  # noqa: N803
               ) -> JSONObject | pd.DataFrame | str:
        """The instance: its state and each task's (``tasks``: the original's id, its
        copy's, the copy's state, run and reason). As a table, dataframe or csv: one row
        per task, with the instance's id and state."""
        return cast("JSONObject | pd.DataFrame | str",
                    _render(self._read(), responseType, _step_rows))

    def getMapping(self) -> JSONObject:  # noqa: N802
        """Each original task and its copy in this instance:
        ``{'taskIds': [{'baseTaskId': 'T1', 'copiedTaskId': 'T3'}, ...]}``."""
        return cast(JSONObject, self.http.request("GET", self._path("mapping")))

    @overload
    def getHistory(self, responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getHistory(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getHistory(self, responseType: TextType) -> str: ...

    def getHistory(self, responseType: ResponseType = "json"  # noqa: N802,N803
                   ) -> JSONRecords | pd.DataFrame | str:
        """The runs of the instance's tasks, oldest first, running ones too: the task
        (original and copy), run number, state, exit code, reason, start and end."""
        return cast("JSONRecords | pd.DataFrame | str",
                    _render(self.http.request("GET", self._path("history")), responseType))

    def waitForEnd(self, timeout: float = 300, poll: float = 0.2) -> JSONObject:  # noqa: N802
        """Wait until the instance has settled (SUCCEEDED, FAILED or ABORTED, with none of
        its tasks still running); the instance. A PREPARED or PAUSED instance does not
        settle by itself: waiting for one raises TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            got = self._read()
            if got["state"] in SETTLED and all(s["state"] != "RUNNING" for s in got["tasks"]):
                return got
            if time.monotonic() > deadline:
                raise errors.TimeoutError(f"instance {self.instanceId} still {got['state']} "
                                          f"after {timeout:g} s")
            time.sleep(poll)

    # -- running ------------------------------------------------------------------------
    def initiate(self) -> JSONObject:
        """Run the prepared instance (once): tasks with no upstream task start now, the
        others when all their upstream tasks have succeeded."""
        return self._act("initiate")

    def pause(self) -> JSONObject:
        """Start no more of its tasks (running ones finish)."""
        return self._act("pause")

    def resume(self) -> JSONObject:
        """Go on with a paused instance."""
        return self._act("resume")

    def abort(self) -> JSONObject:
        """Stop the instance: its running tasks are stopped and no more start."""
        return self._act("abort")

    def recover(self) -> JSONObject:
        """Re-run the failed and never-run tasks of a FAILED or ABORTED instance, keeping
        the succeeded ones (the definition's recovery mode must be on: ConflictError
        otherwise). Any other instance answers that there is nothing to recover
        (``message``, and its ``state``)."""
        return self._act("recover")

    def delete(self) -> JSONObject:
        """Delete the instance and its copied tasks (not while it is RUNNING or PAUSED:
        abort it first)."""
        return cast(JSONObject, self.http.request("DELETE", self._path()))

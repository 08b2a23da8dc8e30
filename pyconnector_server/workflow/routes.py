"""The Workflow Service's REST API under ``/WorkflowService/v1.0`` (TCUP's paths are not
public: this is our design, documented in docs/workflow.md).

Definitions are addressed by process name and version, instances by id (``I1``). Real
HTTP statuses: 201 for what is created, 404 for what is not the tenant's, 409 for what
an instance's state does not allow.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from starlette.responses import JSONResponse

from ..auth import Tenant
from ..bodies import json_body
from ..cancel import finish_anyway
from ..clock import now_ms
from ..deps import Auth, call, state
from ..errors import APIError, bad_request
from ..openapi import answers
from ..tasks.bodies import name as check_name
from ..tasks.runner import Runner
from . import dag
from .bodies import DefinitionIn, RecoveryIn
from .bodies import version as check_version
from .engine import Engine

PREFIX = "/WorkflowService/v1.0"
router = APIRouter(prefix=PREFIX, tags=["Workflow Service"])
Flows = Depends(state("workflow", Engine))
ProcessName = Path(description="The process name", max_length=128)
ProcessVersion = Path(description="The process version", max_length=64)
InstanceRef = Path(description="Instance id (I1)", max_length=16)
DEF_PATH = "/definitions/{name}/{version}"
INST_PATH = "/instances/{instance}"


class Definition(BaseModel):
    processName: str  # noqa: N815
    processVersion: str  # noqa: N815
    tasks: list[str]
    links: list[dict[str, str]]
    recoveryMode: bool  # noqa: N815
    schedule: dict[str, Any] | None
    createdOn: str | None  # noqa: N815
    updatedOn: str | None  # noqa: N815


class Step(BaseModel):
    baseTaskId: str  # noqa: N815
    copiedTaskId: str  # noqa: N815
    state: str
    run: int | None
    reason: str


class Instance(BaseModel):
    instanceId: str  # noqa: N815
    processName: str  # noqa: N815
    processVersion: str  # noqa: N815
    state: str
    trigger: str
    recoveries: int
    createdOn: str | None  # noqa: N815
    startedOn: str | None  # noqa: N815
    endedOn: str | None  # noqa: N815
    tasks: list[Step]


class Mapping(BaseModel):
    taskIds: list[dict[str, str]]  # noqa: N815


class Done(BaseModel):
    code: int
    message: str
    instanceId: str | None = None  # noqa: N815
    state: str | None = None


class HistoryEntry(BaseModel):
    baseTaskId: str  # noqa: N815
    copiedTaskId: str  # noqa: N815
    run: int
    state: str
    exitCode: int | None  # noqa: N815
    reason: str
    startedOn: str | None  # noqa: N815
    endedOn: str | None  # noqa: N815


# -- definitions ------------------------------------------------------------------------------
@router.post("/definitions", status_code=201, summary="Save a process definition (the same "
             "name, version and graph again: 200 with the saved one)",
             responses={**answers(Definition, 201, "Saved", 409), 200: {
                 "model": Definition, "description": "Saved before, the same"}})
async def create_definition(t: Tenant = Auth, body: DefinitionIn = json_body(DefinitionIn, ""),
                            e: Engine = Flows) -> Any:
    edges = [(link.source, link.destination) for link in body.links]
    names, kept = dag.check(edges, "links")
    ids = [int(n[1:]) for n in names]
    own = await call(e.store.own_tasks, t, ids)
    for i, (up, down) in enumerate(edges):
        for which, ref in (("source", up), ("destination", down)):
            if ref not in ("start", "end") and int(ref[1:]) not in own:
                raise bad_request(f"links[{i}].{which}: no task {ref} (of this tenant)",
                                  f"links[{i}].{which}")
    made, view = await call(e.store.add_definition, t, body.processName,
                            body.processVersion, ids,
                            [(int(a[1:]), int(b[1:])) for a, b in kept])
    return view if made else JSONResponse(view, status_code=200)


# Lists come a page at a time, oldest first: an instance carries up to 500 steps.
MAX_PAGE = 1000
Limit = Query(100, ge=1, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE}).")
Offset = Query(0, ge=0, le=2**31 - 1, description="How many to skip, oldest first.")


@router.get("/definitions", summary="The tenant's process definitions, a page at a time",
            responses=answers(list[Definition], 200, "The definitions"))
async def list_definitions(t: Tenant = Auth, e: Engine = Flows,
                           processName: str | None = Query(None, max_length=128),  # noqa: N803
                           limit: int = Limit, offset: int = Offset) -> Any:
    _filters(processName, None)
    return await call(e.store.definitions, t, processName, limit, offset)


@router.get(DEF_PATH, summary="A process definition",
            responses=answers(Definition, 200, "The definition", 404))
async def get_definition(name: str = ProcessName, version: str = ProcessVersion,
                         t: Tenant = Auth, e: Engine = Flows) -> Any:
    return await call(e.store.definition, t, name, version)


@router.delete(DEF_PATH, summary="Delete a definition with its instances (running ones are "
               "stopped) and their copied tasks", responses=answers(Done, 200, "Deleted", 404))
async def delete_definition(name: str = ProcessName, version: str = ProcessVersion,
                            t: Tenant = Auth, e: Engine = Flows) -> Any:
    with finish_anyway():
        copies = await call(e.store.delete_definition, t, name, version)
        await _forget_tasks(e.runner, t, copies)
    return {"code": 200, "message": f"{name!r} version {version!r} deleted with "
            f"{len(copies)} copied task(s)"}


@router.put(DEF_PATH + "/recovery", summary="Turn recovery mode on or off",
            responses=answers(Definition, 200, "Set", 404))
async def set_recovery(name: str = ProcessName, version: str = ProcessVersion,
                       t: Tenant = Auth, body: RecoveryIn = json_body(RecoveryIn, ""),
                       e: Engine = Flows) -> Any:
    return await call(e.store.update_definition, t, name, version,
                      recovery_mode=body.recoveryMode)


@router.post(DEF_PATH + "/instances", status_code=201, summary="Prepare an instance: a copy "
             "of each task, linked like the originals (preInitiate)",
             responses=answers(Instance, 201, "Prepared", 404, 409))
async def prepare(name: str = ProcessName, version: str = ProcessVersion, t: Tenant = Auth,
                  e: Engine = Flows) -> Any:
    d = await call(e.store.definition_row, t, name, version)
    with finish_anyway():
        iid = await e.prepare(t, d)
        return await call(e.store.instance, t, f"I{iid}")


# -- instances --------------------------------------------------------------------------------
@router.get("/instances", summary="The tenant's instances (of one process, or version), a "
            "page at a time",
            responses=answers(list[Instance], 200, "The instances"))
async def list_instances(t: Tenant = Auth, e: Engine = Flows,
                         processName: str | None = Query(None, max_length=128),  # noqa: N803
                         processVersion: str | None = Query(None, max_length=64),  # noqa: N803
                         limit: int = Limit, offset: int = Offset) -> Any:
    _filters(processName, processVersion)
    return await call(e.store.instances, t, processName, processVersion, limit, offset)


def _filters(name: str | None, version: str | None) -> None:
    """A 400 for a filter no name or version can match (control characters, '/'): it
    names the rule, and PostgreSQL is never sent a NUL."""
    if name is not None:
        check_name(name, "processName")
    if version is not None:
        check_version(version, "processVersion")


@router.get(INST_PATH, summary="An instance and the state of each of its tasks",
            responses=answers(Instance, 200, "The instance", 404))
async def get_instance(instance: str = InstanceRef, t: Tenant = Auth,
                       e: Engine = Flows) -> Any:
    return await call(e.store.instance, t, instance)


@router.get(INST_PATH + "/mapping", summary="Each original task and its copy in the instance",
            responses=answers(Mapping, 200, "The mapping", 404))
async def mapping(instance: str = InstanceRef, t: Tenant = Auth, e: Engine = Flows) -> Any:
    view = await call(e.store.instance, t, instance)
    return {"taskIds": [{"baseTaskId": s["baseTaskId"], "copiedTaskId": s["copiedTaskId"]}
                        for s in view["tasks"]]}


@router.get(INST_PATH + "/history", summary="The runs of the instance's tasks, oldest first "
            "(running ones too)", responses=answers(list[HistoryEntry], 200, "The runs", 404))
async def history(instance: str = InstanceRef, t: Tenant = Auth, e: Engine = Flows) -> Any:
    row = await call(e.store.instance_row, t, instance)
    return await call(e.store.history, row.id)


async def _move(e: Engine, t: Tenant, ref: str, states: tuple[str, ...], to: str,
                verb: str, **values: Any) -> dict[str, Any]:
    row = await call(e.store.instance_row, t, ref)
    if not await call(e.store.set_state, row.id, states, to, **values):
        current = await call(e.store.instance_row, t, ref)
        raise APIError(409, f"instance I{row.id} is {current.state}: only a "
                       f"{' or '.join(states)} instance can be {verb}")
    e.poke()
    return {"code": 200, "message": f"instance I{row.id} {verb}", "instanceId": f"I{row.id}",
            "state": to}


@router.post(INST_PATH + "/initiate", summary="Run a prepared instance (once)",
             responses=answers(Done, 200, "Started", 404, 409))
async def initiate(instance: str = InstanceRef, t: Tenant = Auth, e: Engine = Flows) -> Any:
    return await _move(e, t, instance, ("PREPARED",), "RUNNING", "initiated",
                       started_ms=now_ms())


@router.post(INST_PATH + "/pause", summary="Start no more of its tasks (running ones finish)",
             responses=answers(Done, 200, "Paused", 404, 409))
async def pause(instance: str = InstanceRef, t: Tenant = Auth, e: Engine = Flows) -> Any:
    return await _move(e, t, instance, ("RUNNING",), "PAUSED", "paused")


@router.post(INST_PATH + "/resume", summary="Go on with a paused instance",
             responses=answers(Done, 200, "Resumed", 404, 409))
async def resume(instance: str = InstanceRef, t: Tenant = Auth, e: Engine = Flows) -> Any:
    return await _move(e, t, instance, ("PAUSED",), "RUNNING", "resumed")


@router.post(INST_PATH + "/abort", summary="Stop the instance: its running tasks are "
             "stopped, no more start", responses=answers(Done, 200, "Aborted", 404, 409))
async def abort(instance: str = InstanceRef, t: Tenant = Auth, e: Engine = Flows) -> Any:
    with finish_anyway():
        done = await _move(e, t, instance, ("PREPARED", "RUNNING", "PAUSED"), "ABORTED",
                           "aborted", ended_ms=now_ms())
        row = await call(e.store.instance_row, t, instance)
        _, _, steps = await call(e.store.steps, row.id)
        for s in steps:
            if s.state == "RUNNING":
                await e.runner.stop(s.task_id)
        return done


@router.post(INST_PATH + "/recover", summary="Re-run the failed and never-run tasks of a "
             "failed or aborted instance (recovery mode on); the succeeded ones are kept",
             responses=answers(Done, 200, "Recovered, or nothing to recover", 404, 409))
async def recover(instance: str = InstanceRef, t: Tenant = Auth, e: Engine = Flows) -> Any:
    row = await call(e.store.instance_row, t, instance)
    _, d, _ = await call(e.store.steps, row.id)
    if not d.recovery_mode:
        raise APIError(409, f"recovery mode is off for {d.name!r} version {d.version!r}: "
                       "turn it on first (selectRecoveryMode(True))")
    if await call(e.store.recover, row.id):
        e.poke()
        return {"code": 200, "message": f"instance I{row.id} recovering: its failed and "
                "never-run tasks run again", "instanceId": f"I{row.id}", "state": "RUNNING"}
    current = await call(e.store.instance_row, t, instance)
    return {"code": 200, "message": f"instance I{row.id} is {current.state}: nothing to "
            "recover (recover() re-runs a FAILED or ABORTED instance)",
            "instanceId": f"I{row.id}", "state": current.state}


@router.delete(INST_PATH, summary="Delete a settled instance and its copied tasks",
               responses=answers(Done, 200, "Deleted", 404, 409))
async def delete_instance(instance: str = InstanceRef, t: Tenant = Auth,
                          e: Engine = Flows) -> Any:
    with finish_anyway():
        copies = await call(e.store.delete_instance, t, instance)
        await _forget_tasks(e.runner, t, copies)
    return {"code": 200, "message": f"instance {instance} deleted with {len(copies)} "
            "copied task(s)"}


async def _forget_tasks(runner: Runner, t: Tenant, ids: list[int]) -> None:
    """Stop and delete copied tasks (their instance is gone)."""
    for task_id in ids:
        await runner.stop(task_id)
        await call(runner.store.delete_task_by_id, task_id)
        await call(runner.files.forget, t.id, task_id)

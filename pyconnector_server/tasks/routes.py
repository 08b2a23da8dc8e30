"""The Task Service's REST API under ``/TaskService/v1.0`` (TCUP's task paths are not
public: this is our design, documented in docs/tasks.md).

Projects and tasks are addressed by id (``P1``, ``T1``) or name. Deploys are multipart
forms (the executable file, optional ``dependencies`` and ``inputs`` zips); everything
else is JSON. Real HTTP statuses: 201 for what is created, 404 for what is not the
tenant's, 409 for what the task's state does not allow.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from starlette.responses import FileResponse, PlainTextResponse
from starlette.types import Message

from ..auth import Tenant
from ..bodies import documented, json_body
from ..cancel import finish_anyway
from ..clock import now_ms
from ..deps import Auth, call, state
from ..errors import APIError, bad_request, not_found
from ..openapi import answers, errors
from . import bundle, runtimes, schedule
from .bodies import CopyIn, LinksIn, ProjectIn, ScheduleIn, TaskIn, file_name, name, utf8
from .runner import Runner

PREFIX = "/TaskService/v1.0"
router = APIRouter(prefix=PREFIX, tags=["Task Service"])
Tasks = Depends(state("tasks", Runner))
ProjectRef = Path(description="Project id (P1) or name", max_length=128)
TaskRef = Path(description="Task id (T1) or name", max_length=128)
RUN_PATH = "/projects/{project}/tasks/{job}"


class Done(BaseModel):
    code: int
    message: str


class Project(BaseModel):
    projectId: str  # noqa: N815
    projectName: str  # noqa: N815
    createdOn: str | None  # noqa: N815


class TaskOut(BaseModel):
    jobId: str  # noqa: N815
    jobName: str  # noqa: N815
    projectId: str  # noqa: N815
    projectName: str  # noqa: N815
    type: str
    status: str
    runTime: str | None  # noqa: N815
    filename: str | None
    args: list[Any]
    deployedOn: str | None  # noqa: N815
    links: list[Any]
    createdOn: str | None  # noqa: N815
    updatedOn: str | None  # noqa: N815
    schedule: dict[str, Any] | None = None


class Run(BaseModel):
    run: int
    trigger: str
    state: str
    exitCode: int | None  # noqa: N815
    reason: str
    slot: str | None
    queuedOn: str | None  # noqa: N815
    startedOn: str | None  # noqa: N815
    endedOn: str | None  # noqa: N815


class Action(BaseModel):
    code: int
    message: str
    jobId: str  # noqa: N815
    status: str
    run: int | None = None
    warning: str | None = None


# -- projects ---------------------------------------------------------------------------------
@router.post("/projects", status_code=201, summary="Create a project",
             responses=answers(Project, 201, "Created", 409))
async def create_project(t: Tenant = Auth, body: ProjectIn = json_body(ProjectIn, ""),
                         r: Runner = Tasks) -> Any:
    return await call(r.store.add_project, t, body.projectName)


@router.get("/projects", summary="The tenant's projects",
            responses=answers(list[Project], 200, "The projects"))
async def list_projects(t: Tenant = Auth, r: Runner = Tasks) -> Any:
    return await call(r.store.projects, t)


@router.get("/projects/{project}", summary="A project",
            responses=answers(Project, 200, "The project", 404))
async def get_project(project: str = ProjectRef, t: Tenant = Auth, r: Runner = Tasks) -> Any:
    return await call(r.store.project, t, project)


@router.delete("/projects/{project}", summary="Delete a project and all its tasks (their "
               "runs are stopped and their schedules end first)",
               responses=answers(Done, 200, "Deleted", 404))
async def delete_project(project: str = ProjectRef, t: Tenant = Auth,
                         r: Runner = Tasks) -> Any:
    with finish_anyway():
        ids = await call(r.store.task_ids_of_project, t, project)
        for task_id in ids:  # no more slots, then no more runs
            await call(r.store.update_task, task_id, next_fire_ms=None)
            await r.stop(task_id)
        pid, ids = await call(r.store.delete_project, t, project)
        for task_id in ids:
            await call(r.files.forget, t.id, task_id)
        return {"code": 200, "message": f"project P{pid} deleted with {len(ids)} task(s)"}


# -- tasks ------------------------------------------------------------------------------------
@router.post("/projects/{project}/tasks", status_code=201, summary="Create a task",
             responses=answers(TaskOut, 201, "Created", 404, 409))
async def create_task(project: str = ProjectRef, t: Tenant = Auth,
                      body: TaskIn = json_body(TaskIn, ""), r: Runner = Tasks) -> Any:
    return await call(r.store.add_task, t, project, body.jobName, body.type)


@router.get("/projects/{project}/tasks", summary="A project's tasks (optionally by name)",
            responses=answers(list[TaskOut], 200, "The tasks", 404))
async def list_tasks(project: str = ProjectRef, t: Tenant = Auth, r: Runner = Tasks,
                     jobName: str | None = Query(None, max_length=128)) -> Any:  # noqa: N803
    if jobName is not None:
        name(jobName, "jobName")
    return await call(r.store.tasks, t, project, jobName)


@router.get(RUN_PATH, summary="A task: its deploy, schedule and status",
            responses=answers(TaskOut, 200, "The task", 404))
async def get_task(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                   r: Runner = Tasks) -> Any:
    return await call(r.store.task, t, project, job)


@router.delete(RUN_PATH, summary="Delete a task (a running one is stopped first)",
               responses=answers(Done, 200, "Deleted", 404))
async def delete_task(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                      r: Runner = Tasks) -> Any:
    with finish_anyway():
        row = await call(r.store.task_row, t, project, job)
        await call(r.store.update_task, row.id, next_fire_ms=None)
        await r.stop(row.id)
        await call(r.store.delete_task, t, project, job)
        await call(r.files.forget, t.id, row.id)
        return {"code": 200, "message": f"task T{row.id} deleted"}


# -- deploy -----------------------------------------------------------------------------------
DEPLOY_FORM = {"type": "object", "required": ["file", "runTime"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "The executable file"},
    "runTime": {"type": "string", "enum": sorted(runtimes.RUNTIMES)},
    "args": {"type": "string", "description": "Runtime arguments: a JSON list of strings"},
    "overwrite": {"type": "string", "enum": ["true", "false"],
                  "description": "Replace an earlier deploy (default false: 409)"},
    "dependencies": {"type": "string", "format": "binary",
                     "description": "A zip of files the program needs, unpacked beside it"},
    "inputs": {"type": "string", "format": "binary",
               "description": "A zip of input files, unpacked into input/"}}}


def _args(raw: str | None) -> list[str]:
    if raw is None or raw == "":
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        raise bad_request("args: expected a JSON list of strings", "args") from None
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise bad_request("args: expected a JSON list of strings", "args")
    if len(value) > 64 or any(len(a) > 4096 or "\x00" in a for a in value):
        raise bad_request("args: at most 64 strings of at most 4096 characters, no NUL",
                          "args")
    return [utf8(a, "args") for a in value]


def _capped(request: Request, most: int, refuse: Callable[[], Exception]) -> Request:
    """``request`` with a body that fails with ``refuse()`` once past ``most`` bytes: a form
    sent without a Content-Length (chunked) is refused while it arrives, not after it was
    all read (and spooled to disk)."""
    receive, seen = request.receive, 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > most:
            raise refuse()
        return message

    return Request(request.scope, capped)


@router.post(RUN_PATH + "/deploy", summary="Deploy the task: its executable file, runtime, "
             "arguments, dependency and input zips",
             responses=answers(TaskOut, 200, "Deployed", 404, 409, 413),
             dependencies=[documented(DEPLOY_FORM, "multipart/form-data")])
async def deploy(request: Request, project: str = ProjectRef, job: str = TaskRef,
                 t: Tenant = Auth, r: Runner = Tasks) -> Any:
    limit = r.settings.task_bundle_mb << 20
    most = limit + (1 << 20)  # the file and the zips, and the form around them

    def too_large() -> APIError:
        return APIError(413, f"deploy: larger than the limit of {r.settings.task_bundle_mb} "
                        "MiB (--task-bundle-mb)")

    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > most:
        raise too_large()
    row = await call(r.store.task_row, t, project, job)
    try:
        form = await _capped(request, most, too_large).form(
            max_files=3, max_fields=8, max_part_size=1 << 20)
    except APIError:
        raise
    except Exception as exc:  # Starlette's MultiPartException and friends
        raise bad_request(f"deploy: not a readable multipart form: {exc}") from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise bad_request("file: the executable file is required", "file")
        filename = file_name(upload.filename or "", "file")
        runtime = runtimes.check(str(form.get("runTime") or ""), filename)
        raw_args = form.get("args")
        args = _args(raw_args if isinstance(raw_args, str) else None)
        overwrite = str(form.get("overwrite") or "false").lower() in ("true", "1", "yes")
        if row.runtime is not None and not overwrite:
            raise APIError(409, f"task T{row.id} is deployed: send overwrite=true to "
                           "replace it", field="overwrite")
        if r.runs_of(row.id):
            raise APIError(409, f"task T{row.id} is running: stop it before deploying")
        zips = {k: form.get(k) for k in ("dependencies", "inputs")}
        staged = r.task_dir(t.id, row.id) / f"bundle.new-{now_ms()}"
        await call(_stage, staged, upload, filename, zips, limit)
    finally:
        await form.close()
    try:
        await runtimes.build(runtime.name, filename, staged, staged / ".build.log")
        # The row first, then the files: a client gone by now (a long compile) cancels
        # the update, and the task stays as it was, not its old row over new files.
        deployed_ms = now_ms()
        await call(r.store.update_task, row.id, runtime=runtime.name, filename=filename,
                   args=args, deployed_ms=deployed_ms,
                   status="SCHEDULED" if row.next_fire_ms is not None else "DEPLOYED")
    except BaseException:
        await call(shutil.rmtree, staged, True)
        raise
    with finish_anyway():  # the row says deployed: its files follow, client or no client
        await call(_swap, staged, r.bundle_dir(t.id, row.id))
        await call(r.files.deployed, t.id, row.id, deployed_ms)  # shared with other processes
        return await call(r.store.task, t, project, job)


def _stage(staged: FsPath, upload: Any, filename: str, zips: dict[str, Any],
           limit: int) -> None:
    staged.mkdir(parents=True)
    try:
        total = 0
        with open(staged / filename, "wb") as out:
            upload.file.seek(0)
            while chunk := upload.file.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise APIError(413, f"file: larger than the deploy limit of "
                                   f"{limit >> 20} MiB (--task-bundle-mb)", field="file")
                out.write(chunk)
        for key, dest in (("dependencies", staged), ("inputs", staged / "input")):
            part = zips.get(key)
            if part is None or isinstance(part, str):
                continue
            dest.mkdir(exist_ok=True)
            part.file.seek(0)
            files = bundle.unpack_zip(part.file, dest, key, max_bytes=limit - total,
                                      max_entries=bundle.MAX_ZIP_ENTRIES)
            total += sum((dest / f).stat().st_size for f in files)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def _swap(staged: FsPath, final: FsPath) -> None:
    old = final.with_name(f"bundle.old-{now_ms()}")
    if final.exists():
        final.rename(old)
    staged.rename(final)
    shutil.rmtree(old, ignore_errors=True)


# -- schedule ---------------------------------------------------------------------------------
@router.put(RUN_PATH + "/schedule", summary="Set or change the task's schedule (a delayed "
            "time, or a cron pattern with a recurrence limit)",
            responses=answers(Action, 200, "Scheduled", 404, 409))
async def set_schedule(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                       body: ScheduleIn = json_body(ScheduleIn, ""), r: Runner = Tasks) -> Any:
    row = await call(r.store.task_row, t, project, job)
    now = now_ms()
    warning = None
    if body.delayedTime is not None:
        if body.cronPatternType is not None or body.cron is not None:
            raise bad_request("delayedTime: give a delayed time or a cron pattern, not both",
                              "delayedTime")
        at = schedule.parse_delayed(body.delayedTime, body.timeZone)
        if at < now:
            warning = (f"delayedTime {body.delayedTime!r} is in the past: the task runs at "
                       "once")
        values: dict[str, Any] = dict(
            kind="delayed", delayed_ms=at, time_zone=body.timeZone, cron=None, pattern=None,
            recurrence_limit=0, fired=0, next_fire_ms=max(at, now), schedule_paused=False)
    elif body.cronPatternType is not None or body.cron is not None:
        pattern_type = body.cronPatternType or "cron"
        fields = {k: (None if v is None else str(v)) for k, v in (
            ("minute", body.minute), ("hour", body.hour), ("day", body.day),
            ("month", body.month), ("weekday", body.weekday))}
        cron = schedule.cron_expression(pattern_type, cron=body.cron, **fields)
        tz = body.timeZone or "UTC"
        schedule.resolve_zone(tz)  # a 400 naming timeZone for one it does not know
        limit = schedule.recurrence_limit(body.recurrenceLimit or 0)
        values = dict(kind="recurrent", delayed_ms=None, time_zone=tz, cron=cron,
                      pattern={"cronPatternType": pattern_type, **{
                          k: v for k, v in fields.items() if v is not None}},
                      recurrence_limit=limit, fired=0,
                      next_fire_ms=schedule.next_slot(cron, now, tz), schedule_paused=False)
    else:
        raise bad_request("delayedTime: give a delayed time (delayedTime, timeZone) or a "
                          "cron pattern (cronPatternType and its fields, or cron)",
                          "delayedTime")
    if row.runtime is not None:
        values["status"] = "SCHEDULED"
    await call(r.store.update_task, row.id, **values)
    done = await call(r.store.task, t, project, job)
    return {"code": 200, "message": f"task T{row.id} scheduled: next run "
            f"{done['schedule']['nextRun']}", "jobId": f"T{row.id}", "status": done["status"],
            "warning": warning}


# -- actions ----------------------------------------------------------------------------------
def _act(row: Any, message: str, status: str, number: int | None = None) -> dict[str, Any]:
    return {"code": 200, "message": message, "jobId": f"T{row.id}", "status": status,
            "run": number}


@router.post(RUN_PATH + "/start", summary="Run the task now",
             responses=answers(Action, 200, "Started", 404, 409))
async def start(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                r: Runner = Tasks) -> Any:
    with finish_anyway():
        row = await call(r.store.task_row, t, project, job)
        number = await r.start(row, "start")
        return _act(row, f"task T{row.id} run {number} started", "RUNNING", number)


@router.post(RUN_PATH + "/restart", summary="Stop the task's runs, then run it again",
             responses=answers(Action, 200, "Restarted", 404, 409))
async def restart(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                  r: Runner = Tasks) -> Any:
    with finish_anyway():
        row = await call(r.store.task_row, t, project, job)
        await r.stop(row.id)
        number = await r.start(row, "restart")
        return _act(row, f"task T{row.id} run {number} started", "RUNNING", number)


async def _halt(t: Tenant, project: str, job: str, r: Runner, *,
                cancel: bool) -> dict[str, Any]:
    """Stop the task's runs; to cancel, end its schedule first (no slot fires while the
    runs stop) and leave it CANCELLED."""
    with finish_anyway():
        row = await call(r.store.task_row, t, project, job)
        if cancel:
            await call(r.store.update_task, row.id, next_fire_ms=None)
        n = await r.stop(row.id)
        if not cancel:
            current = await call(r.store.task, t, project, job)
            return _act(row, f"task T{row.id}: {n} run(s) stopped", current["status"])
        await call(r.store.update_task, row.id, status="CANCELLED")
        return _act(row, f"task T{row.id} cancelled: {n} run(s) stopped, no more scheduled",
                    "CANCELLED")


@router.post(RUN_PATH + "/stop", summary="Stop the task's runs (its schedule goes on)",
             responses=answers(Action, 200, "Stopped", 404))
async def stop(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
               r: Runner = Tasks) -> Any:
    return await _halt(t, project, job, r, cancel=False)


@router.post(RUN_PATH + "/cancel", summary="Stop the task's runs and end its schedule",
             responses=answers(Action, 200, "Cancelled", 404))
async def cancel(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                 r: Runner = Tasks) -> Any:
    return await _halt(t, project, job, r, cancel=True)


async def _hold(t: Tenant, project: str, job: str, r: Runner, *,
                pause: bool) -> dict[str, Any]:
    """Pause (or resume) the task's running processes and its schedule."""
    with finish_anyway():
        row = await call(r.store.task_row, t, project, job)
        if pause:
            n, status = await r.pause(row.id), "PAUSED"
            message = f"task T{row.id} paused ({n} run(s), and its schedule)"
        else:
            n = await r.resume(row.id)
            status = "RUNNING" if r.runs_of(row.id) else (
                "SCHEDULED" if row.next_fire_ms is not None else "DEPLOYED")
            message = f"task T{row.id} resumed ({n} run(s))"
        await call(r.store.update_task, row.id, schedule_paused=pause, status=status)
        return _act(row, message, status)


@router.post(RUN_PATH + "/pause", summary="Pause the task's running processes and its "
             "schedule", responses=answers(Action, 200, "Paused", 404))
async def pause(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                r: Runner = Tasks) -> Any:
    return await _hold(t, project, job, r, pause=True)


@router.post(RUN_PATH + "/resume", summary="Resume the task's paused processes and schedule",
             responses=answers(Action, 200, "Resumed", 404))
async def resume(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                 r: Runner = Tasks) -> Any:
    return await _hold(t, project, job, r, pause=False)


@router.post(RUN_PATH + "/copy", status_code=201, summary="Copy the task (deploy, schedule "
             "and links; not its runs) into a project", responses=answers(
                 TaskOut, 201, "The copy", 404, 409))
async def copy(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
               body: CopyIn = json_body(CopyIn, ""), r: Runner = Tasks) -> Any:
    with finish_anyway():
        row = await call(r.store.task_row, t, project, job)
        target = body.projectId or project
        new_name = body.jobName or f"{row.name}-copy"
        made = await call(r.store.add_task, t, target, new_name, row.kind)
        new_id = int(made["jobId"][1:])
        await call(r.store.update_task, new_id, runtime=row.runtime, filename=row.filename,
                   args=row.args, deployed_ms=row.deployed_ms, links=row.links,
                   delayed_ms=row.delayed_ms, time_zone=row.time_zone, cron=row.cron,
                   pattern=row.pattern, recurrence_limit=row.recurrence_limit, fired=0,
                   next_fire_ms=row.next_fire_ms, schedule_paused=row.schedule_paused,
                   status=row.status if row.status in ("DEPLOYED", "SCHEDULED") else (
                       "DEPLOYED" if row.runtime else "CREATED"))
        if row.deployed_ms is not None:
            await call(r.files.copy_bundle, t.id, row.id, new_id, row.deployed_ms)
        return await call(r.store.task, t, target, made["jobId"])


@router.put(RUN_PATH + "/links", summary="Link output files of other tasks' latest "
            "successful runs into this task's input/", responses=answers(
                TaskOut, 200, "Linked", 404))
async def links(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                body: LinksIn = json_body(LinksIn, ""), r: Runner = Tasks) -> Any:
    row = await call(r.store.task_row, t, project, job)
    n = len(body.externalTaskIds)
    projects = body.externalProjectIds or [project]
    files = body.fileNames
    if len(projects) not in (1, n):
        raise bad_request("externalProjectIds: one project, or one per task",
                          "externalProjectIds")
    if len(files) not in (1, n) and n != 1:
        raise bad_request("fileNames: one file name, or one per task", "fileNames")
    for f in files:
        file_name(f, "fileNames")
    out = []
    for i, task_ref in enumerate(body.externalTaskIds):
        p = projects[i if len(projects) > 1 else 0]
        source = await call(r.store.task_row, t, p, task_ref)
        for f in (files if n == 1 else [files[i if len(files) > 1 else 0]]):
            out.append({"projectId": f"P{source.project_id}", "taskId": source.id,
                        "fileName": f})
    await call(r.store.update_task, row.id, links=out)
    return await call(r.store.task, t, project, job)


# -- runs -------------------------------------------------------------------------------------
@router.get(RUN_PATH + "/runs", summary="The task's runs", responses=answers(
    list[Run], 200, "The runs", 404))
async def list_runs(project: str = ProjectRef, job: str = TaskRef, t: Tenant = Auth,
                    r: Runner = Tasks) -> Any:
    row = await call(r.store.task_row, t, project, job)
    return await call(r.store.runs, row.id)


RunNumber = Path(ge=1, le=2**31 - 1)


@router.get(RUN_PATH + "/runs/{number}", summary="A run: state, exit code, times",
            responses=answers(Run, 200, "The run", 404))
async def get_run(project: str = ProjectRef, job: str = TaskRef, number: int = RunNumber,
                  t: Tenant = Auth, r: Runner = Tasks) -> Any:
    row = await call(r.store.task_row, t, project, job)
    return await call(r.store.run, row.id, number)


@router.get(RUN_PATH + "/runs/{number}/log", summary="A run's stdout or stderr (as far as "
            "written)", responses={
                200: {"description": "The log", "content": {"text/plain": {
                    "schema": {"type": "string"}}}}, **errors(404)})
async def get_log(project: str = ProjectRef, job: str = TaskRef, number: int = RunNumber,
                  stream: str = Query("stdout", pattern="^(stdout|stderr)$"),
                  offset: int = Query(0, ge=0, le=2**62), t: Tenant = Auth,
                  r: Runner = Tasks) -> Any:
    row = await call(r.store.task_row, t, project, job)
    path = await r.run_files(t.id, row.id, number) / f"{stream}.txt"
    text = await call(_read_from, path, offset)
    return PlainTextResponse(text, headers={"x-log-size": str(offset + len(text.encode()))})


def _read_from(path: FsPath, offset: int, limit: int = 16 << 20) -> str:
    try:
        with open(path, "rb") as fh:
            if offset >= os.fstat(fh.fileno()).st_size:
                return ""  # seeking far past the end is EINVAL on some file systems
            fh.seek(offset)
            return fh.read(limit).decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


@router.get(RUN_PATH + "/runs/{number}/outputs", summary="The files a run made",
            responses=answers(list[dict[str, Any]], 200, "name and size of each", 404))
async def list_outputs(project: str = ProjectRef, job: str = TaskRef, number: int = RunNumber,
                       t: Tenant = Auth, r: Runner = Tasks) -> Any:
    row = await call(r.store.task_row, t, project, job)
    base = await r.run_files(t.id, row.id, number) / "outputs"
    return await call(lambda: sorted(
        ({"name": str(p.relative_to(base)), "size": p.stat().st_size}
         for p in base.rglob("*") if p.is_file()), key=lambda o: o["name"])
        if base.exists() else [])


@router.get(RUN_PATH + "/runs/{number}/outputs/{path:path}", summary="Download an output "
            "file", responses={
                200: {"description": "The file", "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}}, **errors(404)})
async def get_output(project: str = ProjectRef, job: str = TaskRef, number: int = RunNumber,
                     path: str = Path(max_length=1024), t: Tenant = Auth,
                     r: Runner = Tasks) -> Any:
    row = await call(r.store.task_row, t, project, job)
    base = (await r.run_files(t.id, row.id, number) / "outputs").resolve()
    if "\x00" in path:  # no file has one (and realpath refuses it)
        raise not_found(f"output {path[:80]!r} of run {number}")
    target = (base / path).resolve()
    try:
        found = base in target.parents and target.is_file()
    except OSError:  # a name longer than the file system takes: no such output either
        found = False
    if not found:
        raise not_found(f"output {path[:80]!r} of run {number}")
    return FileResponse(target, filename=target.name)

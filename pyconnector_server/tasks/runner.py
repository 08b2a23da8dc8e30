"""Runs of tasks: from a start (or a schedule's slot) to an outcome, on the executor.

A run is a row (``queued`` → ``running`` → how it ended) and a directory in the data
dir, ``tasks/t<tenant>/T<task>/runs/<n>/``, holding its ``stdout.txt``, ``stderr.txt``
and ``outputs/``. The process itself works in a fresh directory *outside* the data dir
(``--task-dir``): the deployed bundle is copied there, with the files linked from other
tasks' latest successful runs in ``input/``; what the process leaves there that the
bundle did not have (new or changed files) becomes the run's outputs, and the directory
is removed.

A run belongs to the process that started it (``owner``): only that process can stop,
pause or resume it. Runs a process left behind when it stopped or died are marked
``lost`` (by the next start on SQLite; on PostgreSQL by the other processes once its
heartbeat lapses): see :mod:`.owners`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..backends.blobs import BlobStore
from ..backends.executor import PYTHON, Execution, Executor, Job, Limits
from ..clock import now_ms
from ..deps import call
from ..errors import APIError
from ..settings import Settings
from . import runtimes
from .files import TaskFiles
from .store import RunHook, TaskStore

log = logging.getLogger("pyconnector.tasks")

STATUS = {  # a run's ending → its task's status
    "succeeded": "COMPLETED", "failed": "FAILED", "stopped": "STOPPED",
    "timed_out": "FAILED", "out_of_memory": "FAILED", "cpu_limit": "FAILED", "lost": "FAILED"}


@dataclass
class Active:
    """A run this process has on the executor."""

    task_id: int
    number: int
    execution: Execution
    waiter: asyncio.Task[None] | None = None
    paused: bool = False
    stopping: bool = False  # asked to stop by another process (see Runner.obey)


@dataclass
class Runner:
    """Starts runs and follows them to their end (see the module docstring)."""

    store: TaskStore
    executor: Executor
    settings: Settings
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    active: dict[tuple[int, int], Active] = field(default_factory=dict)
    #: the shared blob store (``--blobs``) deploys and ended runs are published to
    blobs: BlobStore | None = None
    #: called after each run of this process has ended (the workflow engine moves on)
    listeners: list[Callable[[], None]] = field(default_factory=list)
    _stopping: set[asyncio.Task[None]] = field(default_factory=set)

    # -- where things are --------------------------------------------------------------
    def open(self) -> None:
        """Make the data dir's task directory, and check the working directories' place
        (at start)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.work_root()

    @cached_property
    def root(self) -> Path:
        """The data dir's task directory (made by :meth:`open`)."""
        return self.settings.data_path / "tasks"

    @cached_property
    def files(self) -> TaskFiles:
        """The tasks' files, here and in the shared store (see :mod:`.files`)."""
        return TaskFiles(self.root, self.blobs)

    def task_dir(self, tenant_id: int, task_id: int) -> Path:
        return self.files.task_dir(tenant_id, task_id)

    def bundle_dir(self, tenant_id: int, task_id: int) -> Path:
        return self.files.bundle_dir(tenant_id, task_id)

    def run_dir(self, tenant_id: int, task_id: int, number: int) -> Path:
        return self.files.run_dir(tenant_id, task_id, number)

    async def run_files(self, tenant_id: int, task_id: int, number: int) -> Path:
        """A run's directory, fetched here when it ended in another process (404 for a
        run that is not)."""
        run = await call(self.store.run, task_id, number)
        ended = run["state"] not in ("queued", "running", "paused")
        return await call(self.files.run, tenant_id, task_id, number, ended)

    def work_root(self) -> Path:
        if self.settings.task_dir:
            base = Path(self.settings.task_dir).expanduser().resolve()
        else:  # one per data dir, so two platforms on a machine keep apart
            digest = hashlib.sha256(str(self.settings.data_path).encode()).hexdigest()[:12]
            base = Path(tempfile.gettempdir()) / f"pyconnector-runs-{digest}"
        data = self.settings.data_path
        if base == data or data in base.parents:
            raise ValueError(f"task_dir (--task-dir) {base} is inside the data dir {data}: "
                             "a task must not reach the platform's files")
        base.mkdir(mode=0o711, parents=True, exist_ok=True)
        return base

    def limits(self) -> Limits:
        s = self.settings
        return Limits(cpu_seconds=s.task_cpu_seconds, memory_bytes=s.task_memory_mb << 20,
                      wall_seconds=float(s.task_wall_seconds))

    # -- starting ----------------------------------------------------------------------
    async def start(self, row: Any, trigger: str, slot_ms: int | None = None,
                    with_run: RunHook | None = None) -> int | None:
        """Start a run of the task ``row`` (deployed); its number, or None when the slot
        was fired already (by another process). ``with_run``: see
        :meth:`TaskStore.add_run`."""
        if row.runtime is None:
            raise APIError(409, f"task T{row.id} is not deployed: deploy it first")
        number = await call(self.store.add_run, row.id, trigger, self.owner, slot_ms,
                            with_run)
        if number is None:
            return None
        try:
            job = await call(self._prepare, row, number)
        except APIError as exc:  # a missing linked file or bundle: the run fails, saying so
            await self._ended(row, number, "failed", None, exc.message)
            return number
        except Exception as exc:  # a run row must not stay queued for ever
            log.exception("task T%s run %s: preparing it failed", row.id, number)
            await self._ended(row, number, "failed", None, f"could not prepare the run: {exc}")
            return number
        # RUNNING before the job exists: a job that ends at once sets its ending after it.
        await call(self.store.update_task, row.id, status="RUNNING")
        execution = await self.executor.submit(job)
        active = Active(row.id, number, execution)
        self.active[(row.id, number)] = active
        active.waiter = asyncio.create_task(self._follow(row, active))
        return number

    def _prepare(self, row: Any, number: int) -> Job:
        """The run's directory, a fresh working directory with the bundle and the linked
        files, and the job for the executor."""
        out = self.run_dir(row.tenant_id, row.id, number)
        out.mkdir(parents=True, exist_ok=True)
        bundle = self.files.bundle(row.tenant_id, row.id, row.deployed_ms)
        if bundle is None:  # deployed through another process, with no shared store
            raise APIError(409, f"task T{row.id}'s deploy is not in this platform process's "
                           f"data dir ({self.settings.data_path}): it was deployed through "
                           "another process; share deploys between processes with --blobs")
        work = self.work_root() / f"t{row.tenant_id}-T{row.id}-r{number}-{uuid.uuid4().hex[:6]}"
        shutil.copytree(bundle, work, symlinks=False)
        (work / "input").mkdir(exist_ok=True)
        for link in row.links or []:
            self._place_link(row, link, work / "input")
        # What the bundle had (and when), to tell outputs from it afterwards.
        manifest = {str(p.relative_to(work)): p.stat().st_mtime_ns
                    for p in work.rglob("*") if p.is_file()}
        (out / ".manifest.json").write_text(json.dumps(manifest))
        command = runtimes.command(row.runtime, row.filename, list(row.args or []))
        if command[0] == sys.executable:  # the executor picks the interpreter it can run
            command = (PYTHON, *command[1:])
        limits = runtimes.limits(row.runtime, self.limits())  # Spark needs more open files
        env = {**runtimes.environment(row.runtime, limits),
               "PYCONNECTOR_TASK": f"T{row.id}", "PYCONNECTOR_RUN": str(number)}
        return Job(run_id=f"t{row.tenant_id}-T{row.id}-r{number}", workdir=work,
                   command=command, stdout=out / "stdout.txt", stderr=out / "stderr.txt",
                   env=env, limits=limits)

    def _place_link(self, row: Any, link: dict[str, Any], into: Path) -> None:
        source = self.store.row_by_id(link["taskId"])
        latest = None if source is None else self.store.latest_success(source.id)
        name = link["fileName"]
        if source is None or source.tenant_id != row.tenant_id:
            raise APIError(409, f"linked task T{link['taskId']} no longer exists")
        if latest is None:
            raise APIError(409, f"linked task T{source.id} has no successful run yet: "
                           f"no {name!r} to take")
        found = self.files.run(source.tenant_id, source.id, latest, ended=True) / "outputs" / name
        if not found.is_file():
            raise APIError(409, f"linked file {name!r} is not among the outputs of task "
                           f"T{source.id}'s run {latest}")
        shutil.copyfile(found, into / Path(name).name)

    # -- following ---------------------------------------------------------------------
    async def _follow(self, row: Any, active: Active) -> None:
        execution = active.execution
        try:
            while execution.started_at is None and execution.state == "queued":
                await asyncio.sleep(0.02)
            if execution.started_at is not None:
                await call(self.store.update_run, row.id, active.number, state="running",
                           started_ms=int(execution.started_at * 1000))
            outcome = await execution.wait()
            await call(self._collect, row, active.number, execution.job)
            await call(self.files.ended, row.tenant_id, row.id, active.number)
            await self._ended(row, active.number, outcome.ending, outcome.exit_code,
                              outcome.reason)
        except Exception:
            log.exception("task T%s run %s: following it failed", row.id, active.number)
            await self._ended(row, active.number, "failed", None, "the platform lost track "
                              "of the run (see its log)")
        finally:
            self.active.pop((row.id, active.number), None)
            # in a thread: a big working directory must not hold up the event loop
            await asyncio.to_thread(shutil.rmtree, execution.job.workdir, ignore_errors=True)

    def _collect(self, row: Any, number: int, job: Job) -> None:
        """Move what the run made (new or changed files) to its outputs."""
        out = self.run_dir(row.tenant_id, row.id, number)
        try:
            manifest = json.loads((out / ".manifest.json").read_text())
        except (OSError, ValueError):
            manifest = {}
        outputs = out / "outputs"
        outputs.mkdir(exist_ok=True)
        for p in job.workdir.rglob("*"):
            if p.is_symlink() or not p.is_file() or ".tmp" in p.relative_to(job.workdir).parts:
                continue
            rel = str(p.relative_to(job.workdir))
            if manifest.get(rel) == p.stat().st_mtime_ns:
                continue
            target = outputs / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(p), target)

    async def _ended(self, row: Any, number: int, ending: str, exit_code: int | None,
                     reason: str) -> None:
        await call(self.store.end_run, row.id, number, STATUS.get(ending, "FAILED"),
                   state=ending, exit_code=exit_code, reason=reason, ended_ms=now_ms())
        for listener in self.listeners:
            listener()

    # -- acting on runs ----------------------------------------------------------------
    def runs_of(self, task_id: int) -> list[Active]:
        return [a for (tid, _), a in self.active.items() if tid == task_id]

    async def stop(self, task_id: int) -> int:
        """Stop the task's runs: those of this process now, those of other processes
        sharing the database at their next look (:meth:`obey`); how many there were."""
        elsewhere = await call(self.store.request_stop, task_id, self.owner)
        runs = self.runs_of(task_id)
        for a in runs:
            await a.execution.stop()
        for a in runs:
            if a.waiter is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await a.waiter
        return len(runs) + elsewhere

    async def obey(self) -> None:
        """Stop this process's runs that another process was asked to stop, or whose
        task was deleted meanwhile (their rows went with it). The scheduler calls this
        on each tick."""
        if not self.active:
            return
        wanted = await call(self.store.unstopped_runs, self.owner)
        for key, a in list(self.active.items()):
            if key not in wanted and a.execution.state != "ended" and not a.stopping:
                a.stopping = True
                self._stopping.add(task := asyncio.create_task(a.execution.stop()))
                task.add_done_callback(self._stopping.discard)

    async def pause(self, task_id: int) -> int:
        runs = [a for a in self.runs_of(task_id) if a.execution.state == "running"]
        for a in runs:
            await a.execution.pause()
            await call(self.store.update_run, task_id, a.number, state="paused")
        return len(runs)

    async def resume(self, task_id: int) -> int:
        runs = [a for a in self.runs_of(task_id) if a.execution.state == "paused"]
        for a in runs:
            await a.execution.resume()
            await call(self.store.update_run, task_id, a.number, state="running")
        return len(runs)

    async def close(self) -> None:
        for a in list(self.active.values()):
            with contextlib.suppress(Exception):
                await a.execution.stop(grace=1.0)
        for a in list(self.active.values()):
            if a.waiter is not None:
                a.waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await a.waiter
        await self.executor.close()

"""The platform's side of jobs that run elsewhere (the ``celery`` executor's workers).

A remote executor hands each job to a queue as a small message (:meth:`RemoteExecutor.send`):
the command, the environment, the limits, and where to report (a URL on this platform and
a secret token of the job). A worker that takes the message talks to the platform over
HTTP, the routes of :data:`router` (mounted by the Task Service under
``/TaskService/v1.0/worker``; kept out of the API document: only workers call them):

``GET  jobs/{key}/bundle``   the job's working directory as a tar; the job is then *taken*
                             (410 if it was stopped meanwhile: the worker drops it)
``POST jobs/{key}/beat``     the worker's report every :data:`BEAT_SECONDS` at most: its
                             state, when the process started, the new bytes of its logs.
                             The answer is an order (``stop``, ``pause``, ``resume``) or
                             none; with none to give it is held up to :data:`HOLD_SECONDS`
                             (not the ``final`` ones, sent after the job ended), so an
                             order reaches the worker as soon as it is given.
``PUT  jobs/{key}/outputs``  a tar of the files the job made or changed, unpacked into the
                             job's working directory (so the Task Service collects them as
                             it does a local job's)
``POST jobs/{key}/end``      the outcome

Every call carries the job's token (``x-job-token``); a wrong one is answered like an
unknown job (404). A taken job whose worker stops reporting for ``lost_after`` seconds
ends ``failed`` ("lost"); a job no worker has taken yet waits (a queue with no workers
is not an error of the job). The order and concurrency are the platform's: at most
``concurrency`` jobs are handed out at once, the others wait here in submission order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import os
import secrets
import tarfile
import tempfile
import time
import weakref
from abc import abstractmethod
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from ...errors import APIError, bad_request
from .base import Ending, Execution, Executor, Job, Outcome, Slots, State

log = logging.getLogger("pyconnector.executor")

#: most seconds between two reports of a worker
BEAT_SECONDS = 0.25
#: how long the platform holds a report when it has no order to answer with
HOLD_SECONDS = 0.5
#: how long :meth:`RemoteExecution.pause`/``resume`` wait for the worker to report it done
ORDER_SECONDS = 15.0
#: most bytes of one log a report carries (the worker sends the rest in the next ones)
LOG_CHUNK = 1 << 20
#: the outputs a job may send back, in all: this many times its largest-file limit
OUTPUTS_FACTOR = 4

NO_SUCH_JOB = "no such job: the platform does not run it (any more)"

_jobs: weakref.WeakValueDictionary[str, RemoteExecution] = weakref.WeakValueDictionary()
"""The jobs of every remote executor of this process, by key: the routes find them here."""


class RemoteExecution(Execution):
    """A job handed to workers: its state as they report it."""

    def __init__(self, job: Job, executor: RemoteExecutor) -> None:
        super().__init__(job)
        self.key = secrets.token_hex(16)
        self.token = secrets.token_urlsafe(32)
        self._executor = executor
        self.taken = False  # a worker fetched the bundle
        self.contact = time.monotonic()  # the worker's last report
        self._order: dict[str, Any] | None = None
        self._ordered = asyncio.Event()  # an order waits for the worker
        self._reported = asyncio.Event()  # set on each report (and at the end)

    async def stop(self, grace: float = 5.0) -> None:
        if self._outcome is not None:
            return
        if not self.taken:  # waiting here or in the queue: no worker will run it now
            self._executor.slots.unqueue(self)
            self.finish(Outcome("stopped", None, "stopped", None, time.time()))
            return
        self._give({"order": "stop", "grace": grace})
        await self._done.wait()  # the worker's end, or the lost watchdog's

    async def pause(self) -> None:
        if self._state != "running":
            raise ValueError(f"run {self.job.run_id} is {self._state}, not running")
        await self._carry_out("pause", "paused")

    async def resume(self) -> None:
        if self._state != "paused":
            raise ValueError(f"run {self.job.run_id} is {self._state}, not paused")
        await self._carry_out("resume", "running")

    # -- inside ---------------------------------------------------------------------------------
    def _give(self, order: dict[str, Any]) -> None:
        self._order = order
        self._ordered.set()

    async def _carry_out(self, order: str, state: State) -> None:
        """Give ``order`` and wait for the worker to report ``state`` (or the end)."""
        self._give({"order": order})
        deadline = time.monotonic() + ORDER_SECONDS
        while self._state != state and self._outcome is None:
            self._reported.clear()
            try:
                await asyncio.wait_for(self._reported.wait(), deadline - time.monotonic())
            except (asyncio.TimeoutError, ValueError):
                raise RuntimeError(f"run {self.job.run_id}: its worker did not {order} it "
                                   f"within {ORDER_SECONDS:g} s") from None
        if self._outcome is not None and self._state != state:
            raise ValueError(f"run {self.job.run_id} ended before it could {order}")

    def finish(self, outcome: Outcome) -> None:
        if not self._settle(outcome):
            return
        self._reported.set()
        self._ordered.set()  # a held report answers now
        self._executor.slots.release(self)
        _jobs.pop(self.key, None)

    def message(self) -> dict[str, Any]:
        """What the queue carries to a worker: everything but the files."""
        job, limits = self.job, self.job.limits
        return {
            "run_id": job.run_id, "url": f"{self._executor.callback_url}/jobs/{self.key}",
            "token": self.token, "command": list(job.command), "env": dict(job.env),
            "limits": {"cpu_seconds": limits.cpu_seconds, "memory_bytes": limits.memory_bytes,
                       "open_files": limits.open_files, "file_bytes": limits.file_bytes,
                       "wall_seconds": limits.wall_seconds},
        }

    def check(self, token: str) -> RemoteExecution:
        if not hmac.compare_digest(self.token.encode(), token.encode()):
            raise APIError(404, NO_SUCH_JOB)  # as for an unknown key: no hint it exists
        return self


class RemoteExecutor(Executor):
    """Hands jobs to workers through :meth:`send`, at most ``concurrency`` at a time."""

    def __init__(self, concurrency: int, callback_url: str, lost_after: float) -> None:
        if not callback_url:
            raise ValueError(f"the {self.kind} executor needs the address its workers reach "
                             "the platform at (--public-url)")
        self.max_concurrency = concurrency
        self.callback_url = callback_url.rstrip("/")
        self.lost_after = lost_after
        self.slots: Slots[RemoteExecution] = Slots(concurrency, self._hand_out)
        self._sending: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    @abstractmethod
    def send(self, message: dict[str, Any]) -> None:
        """Put a job's message on the queue (blocking: it runs in a worker thread)."""

    async def submit(self, job: Job) -> Execution:
        if self.slots.closed:
            raise RuntimeError(f"the {self.kind} executor is closed: run {job.run_id} not queued")
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name=f"{self.kind} watchdog")
        execution = RemoteExecution(job, self)
        _jobs[execution.key] = execution
        self.slots.add(execution)
        return execution

    def _hand_out(self, execution: RemoteExecution) -> None:
        task = asyncio.get_running_loop().create_task(self._send(execution))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, execution: RemoteExecution) -> None:
        try:
            await asyncio.to_thread(self.send, execution.message())
        except Exception as exc:  # the queue is down: the run fails, saying so
            log.warning("%s executor: could not queue run %s: %s", self.kind,
                        execution.job.run_id, exc)
            execution.finish(Outcome("failed", None, f"could not queue it on the {self.kind} "
                                     f"executor: {exc}", None, time.time()))

    async def _watch(self) -> None:
        """End the taken jobs whose worker stopped reporting."""
        while True:
            await asyncio.sleep(min(1.0, self.lost_after / 4))
            now = time.monotonic()
            for execution in list(self.slots.running):
                if execution.taken and now - execution.contact > self.lost_after:
                    execution.finish(Outcome(
                        "failed", None, f"lost: its worker stopped reporting for "
                        f"{self.lost_after:g} s", execution.started_at, time.time()))

    async def close(self) -> None:
        self.slots.closed = True
        for execution in list(self.slots.waiting):
            await execution.stop()
        running = list(self.slots.running)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(e.stop(2.0) for e in running)),
                                   2.0 + 2 * HOLD_SECONDS + 1)
        for execution in running:  # a worker that did not answer: its job is left to it
            execution.finish(Outcome("stopped", None, "stopped: the platform shut down",
                                     execution.started_at, time.time()))
        for task in (self._watchdog, *self._sending):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


# -- the routes workers call ---------------------------------------------------------------------
router = APIRouter(include_in_schema=False)
Token = Header(alias="x-job-token", default="")


def _job(key: str, token: str) -> RemoteExecution:
    execution = _jobs.get(key)
    if execution is None:
        raise APIError(404, NO_SUCH_JOB)
    return execution.check(token)


@router.get("/jobs/{key}/bundle")
async def bundle(key: str, token: str = Token) -> FileResponse:
    execution = _job(key, token)
    if execution.state == "ended" or execution.taken:
        raise APIError(410, f"run {execution.job.run_id} was stopped or taken already")
    execution.taken = True
    execution.contact = time.monotonic()
    path = await asyncio.to_thread(_pack, execution.job.workdir)
    return FileResponse(path, media_type="application/x-tar",
                        background=BackgroundTask(os.unlink, path))


def _pack(workdir: Path) -> str:
    fd, path = tempfile.mkstemp(prefix="pyconnector-bundle-", suffix=".tar")
    with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(workdir, arcname=".")
    return path


#: a moment as a worker reports it: seconds since the epoch, finite, before year 5000
Moment = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]


class LogChunk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    offset: int = Field(ge=0, le=2**62)  # and within the job's file limit: see beat()
    data: str = Field(max_length=(LOG_CHUNK * 4) // 3 + 4)  # base64 of at most LOG_CHUNK


class Beat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["queued", "running", "paused"]
    started_at: Moment | None = None
    stdout: LogChunk | None = None
    stderr: LogChunk | None = None
    final: bool = False  # the job has ended: the last of its logs, answered at once


class End(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ending: Ending
    exit_code: int | None = Field(ge=-2**31, le=2**31 - 1)  # what a run row stores
    reason: str = Field(max_length=2000)
    started_at: Moment | None
    ended_at: Moment


@router.post("/jobs/{key}/beat")
async def beat(key: str, body: Beat, token: str = Token) -> dict[str, Any]:
    execution = _job(key, token)
    execution.contact = time.monotonic()
    if execution.state == "ended":
        return {"order": "stop", "grace": 0}  # ended here (stopped, lost): so must it there
    job = execution.job
    logs = [(path, chunk.offset, _log_bytes(name, chunk, job))
            for name, chunk, path in (("stdout", body.stdout, job.stdout),
                                      ("stderr", body.stderr, job.stderr))
            if chunk is not None and chunk.data]  # all checked before anything is written
    if body.started_at is not None and execution.started_at is None:
        execution._started_at = body.started_at
        _touch(job)
    for path, offset, data in logs:
        await asyncio.to_thread(_write_at, path, offset, data)
    if body.state != "queued" and execution.started_at is not None:
        execution._state = body.state
    execution._reported.set()
    if execution._order is None and not body.final:
        execution._ordered.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(execution._ordered.wait(), HOLD_SECONDS)
    order, execution._order = execution._order, None
    return order or {}


def _log_bytes(name: str, chunk: LogChunk, job: Job) -> bytes:
    """The bytes of a log chunk, or a 400 naming the field: base64, and no further than
    the job's file limit (a log is a file the job writes; a sparse file of any size is not
    a worker's to make on the platform's disk)."""
    try:
        data = base64.b64decode(chunk.data, validate=True)
    except ValueError:
        raise bad_request(f"{name}.data: not base64", f"{name}.data") from None
    if chunk.offset + len(data) > job.limits.file_bytes:
        raise bad_request(f"{name}.offset: the log would pass the job's "
                          f"{job.limits.file_bytes}-byte file limit", f"{name}.offset")
    return data


def _write_at(path: Path, offset: int, data: bytes) -> None:
    """Write a log chunk where it belongs (a report sent twice writes it twice, harmlessly;
    a log whose directory is gone - its task was deleted meanwhile - is not written)."""
    with contextlib.suppress(FileNotFoundError), \
            open(path, "r+b" if path.exists() else "wb") as f:
        f.seek(offset)
        f.write(data)


def _touch(job: Job) -> None:
    """The job's logs exist once it has started (as with the local executor)."""
    for path in (job.stdout, job.stderr):
        with contextlib.suppress(FileNotFoundError):  # its directory is gone: see _write_at
            path.touch()


@router.put("/jobs/{key}/outputs")
async def outputs(key: str, request: Request, token: str = Token) -> dict[str, Any]:
    execution = _job(key, token)
    execution.contact = time.monotonic()
    limit = execution.job.limits.file_bytes * OUTPUTS_FACTOR
    with tempfile.TemporaryFile() as spool:
        size = 0
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise APIError(413, f"outputs over {limit} bytes")
            await asyncio.to_thread(spool.write, part)
        spool.seek(0)
        count = await asyncio.to_thread(_unpack, spool, execution.job.workdir)
    return {"files": count}


def _unpack(spool: Any, workdir: Path) -> int:
    """Unpack the outputs' tar into the working directory: regular files and directories
    only, none outside it (tarfile's ``data`` filter refuses the rest)."""
    count = 0
    with tarfile.open(fileobj=spool, mode="r|") as tar:
        for member in tar:
            if not (member.isfile() or member.isdir()):
                continue
            try:
                tar.extract(member, workdir, filter="data")
            except tarfile.FilterError as exc:
                raise APIError(400, f"outputs: {exc}") from None
            count += member.isfile()
    return count


@router.post("/jobs/{key}/end")
async def end(key: str, body: End, token: str = Token) -> dict[str, Any]:
    execution = _job(key, token)
    if body.started_at is not None:
        _touch(execution.job)
    execution.finish(Outcome(body.ending, body.exit_code, body.reason, body.started_at,
                             body.ended_at))
    return {}

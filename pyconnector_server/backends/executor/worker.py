"""The worker's side of a remote job (see :mod:`.remote` for the platform's): fetch the
job's files, run it with the local executor (the same limits, account and scrubbed
environment as on the platform), report its state and logs, answer the platform's orders,
send back what it made, and its outcome.

A job's files live under the worker's task directory (``--task-dir``, else
``<tmp>/pyconnector-worker``) while it runs and are removed after.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from .base import Execution, Job, Limits, Outcome
from .local import LocalExecutor
from .remote import BEAT_SECONDS, LOG_CHUNK

log = logging.getLogger("pyconnector.worker")
# httpx logs every request at INFO: a worker's log would be its reports
logging.getLogger("httpx").setLevel(logging.WARNING)

#: set by ``pyconnector worker`` before it takes jobs
WORK_ROOT: Path | None = None
#: how long the worker keeps trying to reach the platform before it gives the job up
UNREACHABLE_SECONDS = 30.0


def work_root() -> Path:
    root = WORK_ROOT or Path(tempfile.gettempdir()) / "pyconnector-worker"
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    return root


def run(message: dict[str, Any]) -> None:
    """Run one job to its end (called in a worker thread, one job at a time)."""
    asyncio.run(_run(message))


async def _run(message: dict[str, Any]) -> None:
    place = work_root() / f"{message['run_id']}-{uuid.uuid4().hex[:6]}"
    place.mkdir(mode=0o711)
    timeout = httpx.Timeout(30.0)
    try:
        async with httpx.AsyncClient(base_url=message["url"], timeout=timeout,
                                     headers={"x-job-token": message["token"]}) as client:
            workdir = place / "work"
            if not await _fetch(client, place, workdir):
                return
            manifest = _manifest(workdir)
            executor = LocalExecutor(1)
            job = Job(run_id=message["run_id"], workdir=workdir,
                      command=tuple(message["command"]), stdout=place / "stdout",
                      stderr=place / "stderr", env=dict(message["env"]),
                      limits=Limits(**message["limits"]))
            try:
                execution = await executor.submit(job)
                reporter = _Reporter(client, execution)
                outcome = await reporter.follow()
                if reporter.gone:
                    return
                await _send_outputs(client, workdir, manifest)
                (await client.post("/end", json=_outcome(outcome))).raise_for_status()
            finally:
                await executor.close()
    except Exception:
        log.exception("job %s: the platform could not be reached or answered an error",
                      message.get("run_id"))
    finally:
        shutil.rmtree(place, ignore_errors=True)


async def _fetch(client: httpx.AsyncClient, place: Path, workdir: Path) -> bool:
    """Unpack the job's files into ``workdir``; False if the platform no longer wants it."""
    tar_path = place / "bundle.tar"
    async with client.stream("GET", "/bundle") as r:
        if r.status_code in (404, 410):
            log.info("job dropped: %s", (await r.aread()).decode(errors="replace")[:200])
            return False
        r.raise_for_status()
        with open(tar_path, "wb") as out:
            async for part in r.aiter_bytes():
                out.write(part)
    workdir.mkdir(mode=0o711)
    with tarfile.open(tar_path) as tar:
        tar.extractall(workdir, filter="data")
    tar_path.unlink()
    return True


def _manifest(workdir: Path) -> dict[str, int]:
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns
            for p in workdir.rglob("*") if p.is_file() and not p.is_symlink()}


class _Reporter:
    """Reports the job's state and logs to the platform and carries out its orders."""

    def __init__(self, client: httpx.AsyncClient, execution: Execution) -> None:
        self.client, self.execution = client, execution
        self.offsets = {"stdout": 0, "stderr": 0}
        self.gone = False  # the platform no longer knows the job
        self._stopping: asyncio.Task[None] | None = None

    async def follow(self) -> Outcome:
        """Report until the job ends; then the last of its logs. Its outcome."""
        waiting = asyncio.ensure_future(self.execution.wait())
        reporting = asyncio.ensure_future(self._report_until_ended(waiting))
        try:
            outcome = await waiting
        finally:
            reporting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporting
        if not self.gone:
            while await self._beat(final=True):  # the rest of the logs
                pass
        return outcome

    async def _report_until_ended(self, waiting: asyncio.Future[Outcome]) -> None:
        # The first report as soon as the process runs: the platform learns it at once.
        while self.execution.started_at is None and not waiting.done():
            await asyncio.sleep(0.01)
        last_ok = time.monotonic()
        while not waiting.done():
            try:
                await self._beat()
                last_ok = time.monotonic()
            except httpx.HTTPError as exc:
                if time.monotonic() - last_ok > UNREACHABLE_SECONDS:
                    log.warning("job %s: platform unreachable (%s): stopping it",
                                self.execution.job.run_id, exc)
                    self.gone = True
                    await self.execution.stop(grace=1.0)
                    return
                await asyncio.sleep(BEAT_SECONDS)

    async def _beat(self, final: bool = False) -> bool:
        """One report; True when some log was left behind (more to send)."""
        body: dict[str, Any] = {"state": "running" if final else self._state(),
                                "started_at": self.execution.started_at, "final": final}
        more = False
        for stream in ("stdout", "stderr"):
            data = _read(getattr(self.execution.job, stream), self.offsets[stream])
            if data:
                body[stream] = {"offset": self.offsets[stream],
                                "data": base64.b64encode(data).decode()}
                more = more or len(data) == LOG_CHUNK
        r = await self.client.post("/beat", json=body)
        if r.status_code == 404:  # the platform restarted or gave the job up
            self.gone = True
            await self.execution.stop(grace=1.0)
            return False
        r.raise_for_status()
        for stream in ("stdout", "stderr"):
            if stream in body:
                self.offsets[stream] += len(base64.b64decode(body[stream]["data"]))
        if not final:
            await self._obey(r.json())
        return more

    def _state(self) -> str:
        state = self.execution.state
        return "running" if state == "ended" else state

    async def _obey(self, order: dict[str, Any]) -> None:
        what = order.get("order")
        with contextlib.suppress(ValueError):  # it ended or changed meanwhile
            if what == "stop" and self._stopping is None:
                # not awaited here: reports go on while it stops (within its grace)
                grace = float(order.get("grace", 5.0))
                self._stopping = asyncio.ensure_future(self.execution.stop(grace))
            elif what == "pause":
                await self.execution.pause()
            elif what == "resume":
                await self.execution.resume()


def _read(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(LOG_CHUNK)
    except FileNotFoundError:
        return b""


async def _send_outputs(client: httpx.AsyncClient, workdir: Path,
                        manifest: dict[str, int]) -> None:
    """Send the files the job made or changed (not its ``.tmp``), as a tar."""
    changed = [rel for rel, mtime in _manifest(workdir).items()
               if manifest.get(rel) != mtime and ".tmp" not in Path(rel).parts]
    if not changed:
        return
    fd, tar_path = tempfile.mkstemp(prefix="pyconnector-outputs-", suffix=".tar",
                                    dir=workdir.parent)
    try:
        with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
            for rel in changed:
                tar.add(workdir / rel, arcname=rel, recursive=False)
        r = await client.put("/outputs", content=_chunks(Path(tar_path)),
                             headers={"content-type": "application/x-tar"})
        r.raise_for_status()
    finally:
        os.unlink(tar_path)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:
        while part := f.read(1 << 20):
            yield part


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {"ending": outcome.ending, "exit_code": outcome.exit_code,
            "reason": outcome.reason, "started_at": outcome.started_at,
            "ended_at": outcome.ended_at}

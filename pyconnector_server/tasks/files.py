"""A task's files: its deploy and its runs' logs and outputs, for every platform process.

Each process keeps them in its data dir, ``tasks/t<tenant>/T<task>/``: the deploy in
``bundle/``, each run in ``runs/<n>/`` (``stdout.txt``, ``stderr.txt``, ``outputs/``). A
run's process writes there while it runs, so its logs can be followed live.

Several processes on one database must see each other's tasks: a slot fired by one of
them may run a task deployed through another, and a log may be asked of any. So when
the platform has a shared blob store (``--blobs file:///shared/path`` or ``s3://…``), a
deploy is also published there as one tar (``tasks/t<tenant>/T<task>/bundle.tar``,
with the deploy's time as its version) and an ended run's files under
``tasks/t<tenant>/T<task>/runs/<n>/``. A process that needs a deploy or a run it does
not hold fetches it into its data dir, once. Without ``--blobs`` (one process, or several
sharing a data dir) the data dir is all there is, and nothing is copied twice. The DLS
sweeper leaves these keys alone (they are not DLS blob keys).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ..backends.blobs import BlobStore

log = logging.getLogger("pyconnector.tasks")

#: beside a task's ``bundle/``: the deploy it holds (``deployed_ms``)
VERSION = "bundle.version"
#: in a run's directory fetched from the blob store: it is complete
FETCHED = ".fetched"


class TaskFiles:
    """Where a task's files are (see the module docstring); ``blobs`` None: the data dir
    only."""

    def __init__(self, root: Path, blobs: BlobStore | None) -> None:
        self.root = root
        self.blobs = blobs
        self._lock = threading.Lock()  # one fetch of a deploy at a time

    # -- paths in the data dir -------------------------------------------------------
    def task_dir(self, tenant_id: int, task_id: int) -> Path:
        return self.root / f"t{tenant_id}" / f"T{task_id}"

    def bundle_dir(self, tenant_id: int, task_id: int) -> Path:
        return self.task_dir(tenant_id, task_id) / "bundle"

    def run_dir(self, tenant_id: int, task_id: int, number: int) -> Path:
        return self.task_dir(tenant_id, task_id) / "runs" / str(number)

    @staticmethod
    def _key(tenant_id: int, task_id: int, *parts: str) -> str:
        return "/".join(("tasks", f"t{tenant_id}", f"T{task_id}", *parts))

    # -- deploys -----------------------------------------------------------------------
    def deployed(self, tenant_id: int, task_id: int, version: int) -> None:
        """The deploy in ``bundle/`` is new (``version``: its ``deployed_ms``): note it,
        and publish it when there is a shared store."""
        (self.task_dir(tenant_id, task_id) / VERSION).write_text(str(version))
        if self.blobs is not None:
            self.blobs.put(self._key(tenant_id, task_id, "bundle.tar"),
                           _tar(self.bundle_dir(tenant_id, task_id)))

    def bundle(self, tenant_id: int, task_id: int, version: int | None) -> Path | None:
        """The deploy ``version`` of the task in this data dir, fetched when it is
        elsewhere; None when there is none to have."""
        here = self.bundle_dir(tenant_id, task_id)
        marker = self.task_dir(tenant_id, task_id) / VERSION
        with self._lock:
            if here.is_dir() and _read(marker) in (str(version), None):
                return here  # (no marker: deployed before deploys had versions)
            if self.blobs is None:
                return here if here.is_dir() else None
            key = self._key(tenant_id, task_id, "bundle.tar")
            if not self.blobs.exists(key):
                return None
            staged = here.with_name("bundle.fetching")
            shutil.rmtree(staged, ignore_errors=True)
            staged.mkdir(parents=True)
            _untar(self.blobs.read(key), staged)
            shutil.rmtree(here, ignore_errors=True)
            staged.rename(here)
            marker.write_text(str(version))
            return here

    def copy_bundle(self, tenant_id: int, source: int, target: int, version: int) -> None:
        """Give task ``target`` the deploy of task ``source`` (a copied task)."""
        found = self.bundle(tenant_id, source, version)
        if found is None:
            return
        shutil.copytree(found, self.bundle_dir(tenant_id, target))
        self.deployed(tenant_id, target, version)

    # -- runs --------------------------------------------------------------------------
    def ended(self, tenant_id: int, task_id: int, number: int) -> None:
        """A run of this process has ended: publish its files when there is a shared
        store (a failure is logged: the data dir still holds them)."""
        if self.blobs is None:
            return
        run = self.run_dir(tenant_id, task_id, number)
        try:
            for path in sorted(run.rglob("*")):
                if path.is_file() and not path.is_symlink() and path.name != ".manifest.json":
                    rel = path.relative_to(run).as_posix()
                    with open(path, "rb") as fh:
                        self.blobs.put(self._key(tenant_id, task_id, "runs", str(number), rel),
                                       iter(lambda: fh.read(1 << 20), b""))
        except Exception:
            log.exception("task T%s run %s: publishing its files failed", task_id, number)

    def run(self, tenant_id: int, task_id: int, number: int, ended: bool) -> Path:
        """The run's directory here: this process's own, or (an ``ended`` run of another
        process) fetched from the shared store. It may not exist: a run still going in
        another process, or one that never started."""
        run = self.run_dir(tenant_id, task_id, number)
        # .manifest.json: this process prepared the run (see Runner._prepare)
        if self.blobs is None or not ended or (run / FETCHED).exists() \
                or (run / ".manifest.json").exists():
            return run
        prefix = self._key(tenant_id, task_id, "runs", str(number)) + "/"
        blobs = self.blobs
        with self._lock:
            if (run / FETCHED).exists():  # fetched while this one waited
                return run
            run.mkdir(parents=True, exist_ok=True)
            for key, _ in blobs.list(prefix):
                target = run / key[len(prefix):]
                if run not in target.resolve().parents:  # keys are ours; still, stay in
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as out:
                    for chunk in blobs.read(key):
                        out.write(chunk)
            (run / FETCHED).touch()
        return run

    # -- deleting ----------------------------------------------------------------------
    def forget(self, tenant_id: int, task_id: int) -> None:
        """Delete everything of the task: here, and in the shared store."""
        shutil.rmtree(self.task_dir(tenant_id, task_id), ignore_errors=True)
        if self.blobs is not None:
            for key, _ in list(self.blobs.list(self._key(tenant_id, task_id) + "/")):
                self.blobs.delete(key)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _tar(directory: Path) -> Iterator[bytes]:
    """``directory`` as an uncompressed tar, in chunks (spooled on disk: a deploy may
    be hundreds of MiB)."""
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w") as tar:
            tar.add(directory, arcname=".")
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            yield chunk


def _untar(chunks: Iterator[bytes], into: Path) -> None:
    with tempfile.TemporaryFile() as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        with tarfile.open(fileobj=spool) as tar:
            tar.extractall(into, filter="data")

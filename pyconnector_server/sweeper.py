"""The sweeper: removes what a server killed mid-work leaves behind.

A ``kill -9`` skips every ``finally``: an upload being staged keeps its temporary file
(``<data dir>/tmp``, the blob store's own temporary area or pending S3 multipart upload),
and a blob written just before the kill but never recorded in the catalog stays in the
blob store, where no quota counts it. The sweeper runs when the server starts and then
every ``sweep_interval_seconds``; it removes only what is older than
``sweep_grace_seconds``, so that writes still in flight (of this server or another one on
the same store) are left alone. At start it counts age from the moment the server started,
so its own first requests are never swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from .backends.blobs import BlobStore
from .backends.errors import BackendError
from .datalake.tables import file
from .db import Database

log = logging.getLogger("pyconnector.server.sweeper")

# The keys DatalakeStore.new_blob_key makes; anything else in the store is not ours.
DLS_BLOB_KEY = re.compile(r"^t\d+/[0-9a-f]{32}$")
BATCH = 500  # blob keys looked up in the catalog per query


@dataclass
class SweepReport:
    """What one sweep removed."""

    temp_files: int = 0
    unfinished_writes: int = 0
    orphan_blobs: int = 0
    orphan_bytes: int = 0
    stale_sessions: int = 0

    def __bool__(self) -> bool:
        return any((self.temp_files, self.unfinished_writes, self.orphan_blobs,
                    self.stale_sessions))


class Sweeper:
    """Removes stale temporary files and blobs no catalog row points at."""

    def __init__(self, db: Database, blobs: BlobStore, tmp_dirs: Iterable[Path],
                 grace_seconds: float, interval_seconds: float,
                 sessions: Iterable[Callable[[float], int]] = ()) -> None:
        self.db = db
        # Sweeps of idle upload sessions (resumable uploads): each removes those untouched
        # since the time it is given and says how many.
        self.sessions = list(sessions)
        self.blobs = blobs
        self.tmp_dirs = list(tmp_dirs)
        self.grace = grace_seconds
        self.interval = interval_seconds
        self.started = time.time()

    def sweep(self, before: float) -> SweepReport:
        """Remove what was last written before ``before`` (epoch seconds) and is garbage:
        temporary files, unfinished blob writes, and DLS blobs no catalog row points at."""
        report = SweepReport()
        for d in self.tmp_dirs:
            report.temp_files += _remove_old_files(d, before)
        report.unfinished_writes = self.blobs.sweep_unfinished(before)
        report.stale_sessions = sum(sweep(before) for sweep in self.sessions)
        old = [b for b in self.blobs.list_with_age() if b.modified < before
               and DLS_BLOB_KEY.match(b.key)]
        for i in range(0, len(old), BATCH):
            batch = old[i:i + BATCH]
            # Looked up after the listing: a blob recorded meanwhile is found and kept.
            with self.db.read() as conn:
                known = set(conn.execute(sa.select(file.c.blob_key).where(
                    file.c.blob_key.in_([b.key for b in batch]))).scalars())
            for b in batch:
                if b.key not in known:
                    self.blobs.delete(b.key)
                    report.orphan_blobs += 1
                    report.orphan_bytes += b.size
        return report

    async def run(self) -> None:
        """Sweep now, then every ``interval`` seconds (never again if it is 0 or less)."""
        before = self.started - self.grace
        while True:
            try:
                report = await run_in_threadpool(self.sweep, before)
            except BackendError as exc:  # a store that is down now may be up next time
                log.warning("sweep failed: %s", exc.message)
            except Exception:
                log.exception("sweep failed")
            else:
                if report:
                    log.info("sweep removed %d temporary files, %d unfinished writes, "
                             "%d orphan blobs (%d bytes), %d idle upload sessions",
                             report.temp_files, report.unfinished_writes,
                             report.orphan_blobs, report.orphan_bytes,
                             report.stale_sessions)
            if self.interval <= 0:
                return
            await asyncio.sleep(self.interval)
            before = time.time() - self.grace


def _remove_old_files(directory: Path, before: float) -> int:
    """Remove the files directly in ``directory`` last written before ``before``."""
    n = 0
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return 0
    for path in entries:
        with contextlib.suppress(OSError):  # gone meanwhile: its request finished
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_mtime < before:
                path.unlink()
                n += 1
    return n

"""Blobs as files under one directory: the embedded default (``file://<data_dir>/blobs``).

A write goes to a temporary file in ``<root>/.tmp`` (same file system) and is renamed
over the key at commit: readers see the old file or the new one, never a part. A file
there that a killed server left behind is removed by :meth:`LocalBlobStore.sweep_unfinished`
(the platform's sweeper calls it). Appends
happen in place and are cut back to the old size if they fail. No ``fsync``: like the
SQLite store (WAL, synchronous=NORMAL), an acknowledged write survives a crash of the
server process, not of the operating system.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .base import CHUNK, BlobInfo, BlobStore, BlobWriter, blob_stores, check_key, check_prefix

TMP = ".tmp"


class LocalWriter(BlobWriter):
    """Writes to a temporary file beside the store; publishing is an atomic rename."""

    def __init__(self, final: Path, tmp_dir: Path) -> None:
        self.final = final
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        self.tmp = Path(name)
        super().__init__(os.fdopen(fd, "wb", buffering=0))

    def _publish(self) -> None:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.tmp, self.final)

    def _discard(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


@blob_stores.register("file")
class LocalBlobStore(BlobStore):
    """Blobs as files under ``root``; a key ``a/b`` is the file ``root/a/b``."""

    kind = "local"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.tmp = self.root / TMP
        self.tmp.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str, **_context: Any) -> LocalBlobStore:
        """``file:///path``: the directory ``/path`` (created if missing)."""
        return cls(unquote(urlparse(url).path))

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        # Keys are checked segment by segment; this is a second guard, not the first.
        if self.root not in path.parents or path.parts[len(self.root.parts)] == TMP:
            raise ValueError(f"invalid blob key {key!r}")
        return path

    def writer(self, key: str) -> BlobWriter:
        return LocalWriter(self._path(key), self.tmp)

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK) -> Iterator[bytes]:
        fh = open(self._path(key), "rb")  # noqa: SIM115 - closed by the generator

        def chunks() -> Iterator[bytes]:
            with fh:
                fh.seek(start)
                left = None if end is None else max(0, end - start)
                while left is None or left > 0:
                    data = fh.read(chunk_size if left is None else min(chunk_size, left))
                    if not data:
                        return
                    if left is not None:
                        left -= len(data)
                    yield data

        return chunks()

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Drop directories the delete left empty, up to the root.
        for parent in path.parents:
            if parent == self.root:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def list_with_age(self, prefix: str = "") -> Iterator[BlobInfo]:
        check_prefix(prefix)
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != TMP]
            rel = Path(dirpath).relative_to(self.root)
            for name in filenames:
                key = (rel / name).as_posix() if rel.parts else name
                if key.startswith(prefix):
                    try:
                        st = (Path(dirpath) / name).stat()
                    except FileNotFoundError:  # deleted while listing
                        continue
                    out.append(BlobInfo(key, st.st_size, st.st_mtime))
        return iter(sorted(out))

    def sweep_unfinished(self, before: float) -> int:
        """Remove temporary files last written before ``before``: a write in flight (maybe
        of another process on this root) touches its file all the time."""
        n = 0
        for stale in self.tmp.iterdir():
            with contextlib.suppress(OSError):  # gone meanwhile: committed or aborted
                if stale.stat().st_mtime < before:
                    stale.unlink()
                    n += 1
        return n

    def append(self, key: str, data: Iterable[bytes], at: int | None = None) -> int:
        """In place: seek to ``at`` (dropping anything past it), write; on failure the
        blob is cut back to its old size."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab" if not path.exists() else "r+b") as fh:
            old = fh.seek(0, os.SEEK_END)
            start = old if at is None else at
            if start > old:
                raise ValueError(f"cannot append at {start}: blob {key!r} has {old} bytes")
            fh.seek(start)
            fh.truncate()
            try:
                for chunk in data:
                    fh.write(chunk)
            except BaseException:
                fh.truncate(start)
                raise
            return fh.tell()

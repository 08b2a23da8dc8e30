"""Blobs in a dict of this process (``memory://``): for fast tests, gone at exit.

Every :meth:`MemoryBlobStore.from_url` makes a new, empty store, so two apps never share
one. A lock makes each primitive atomic across the server's worker threads; a write
collects its bytes in its own buffer and replaces the blob at commit.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import Any

from .base import CHUNK, BlobInfo, BlobStore, BlobWriter, blob_stores, check_key, check_prefix


class _Buffer(io.BytesIO):
    """A writer's bytes, remembering when it last received some (for the sweeper)."""

    def __init__(self) -> None:
        super().__init__()
        self.touched = time.time()
        self.swept = False

    def write(self, data: Any) -> int:
        if self.swept:
            raise RuntimeError("this write was dropped as unfinished by the sweeper")
        self.touched = time.time()
        return super().write(data)


class MemoryWriter(BlobWriter):
    """Collects the blob in a buffer; publishing swaps it in under the store's lock."""

    fh: _Buffer

    def __init__(self, store: MemoryBlobStore, key: str) -> None:
        self.store = store
        self.key = key
        super().__init__(_Buffer())

    def commit(self) -> int:
        # Read the buffer before BlobWriter.commit closes it.
        with self.store.lock:
            if self.fh.swept:
                raise RuntimeError("this write was dropped as unfinished by the sweeper")
            self.store.blobs[self.key] = (self.fh.getvalue(), time.time())
            self.store.pending.discard(self)
        return super().commit()

    def _discard(self) -> None:
        with self.store.lock:
            self.store.pending.discard(self)
        self.fh.close()


@blob_stores.register("memory")
class MemoryBlobStore(BlobStore):
    """Blobs as ``key → (bytes, modified)`` in a dict guarded by a lock."""

    kind = "memory"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blobs: dict[str, tuple[bytes, float]] = {}
        self.pending: set[MemoryWriter] = set()

    @classmethod
    def from_url(cls, url: str, **_context: Any) -> MemoryBlobStore:
        """``memory://`` (anything after the scheme is ignored): a new, empty store."""
        return cls()

    def writer(self, key: str) -> BlobWriter:
        w = MemoryWriter(self, check_key(key))
        with self.lock:
            self.pending.add(w)
        return w

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK) -> Iterator[bytes]:
        with self.lock:
            found = self.blobs.get(check_key(key))
        if found is None:
            raise FileNotFoundError(key)
        # The bytes object is immutable: a later write replaces it, this read is unchanged.
        data = memoryview(found[0])[start:end]
        return (bytes(data[i:i + chunk_size]) for i in range(0, len(data), chunk_size))

    def size(self, key: str) -> int | None:
        with self.lock:
            found = self.blobs.get(check_key(key))
        return None if found is None else len(found[0])

    def delete(self, key: str) -> None:
        with self.lock:
            self.blobs.pop(check_key(key), None)

    def list_with_age(self, prefix: str = "") -> Iterator[BlobInfo]:
        check_prefix(prefix)
        with self.lock:
            found = [BlobInfo(k, len(data), modified)
                     for k, (data, modified) in self.blobs.items() if k.startswith(prefix)]
        return iter(sorted(found))

    def sweep_unfinished(self, before: float) -> int:
        """Drop writes that last received bytes before ``before``; their writers fail."""
        with self.lock:
            stale = [w for w in self.pending if w.fh.touched < before]
            for w in stale:
                w.fh.swept = True
                self.pending.discard(w)
        return len(stale)

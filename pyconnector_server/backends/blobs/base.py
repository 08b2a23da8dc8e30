"""The blob store interface: a few primitives over keys and bytes.

A *key* is a relative, ``/``-separated name (``t1/5f0c…``); a *blob* is the bytes stored
under it. Implementations provide the primitives marked abstract; the conveniences
(:meth:`BlobStore.put`, :meth:`BlobStore.get`, :meth:`BlobStore.exists`,
:meth:`BlobStore.append`, :meth:`BlobStore.list`) are derived here, and a backend overrides one only where it
has a faster native way (the local store appends in place).

Domain rules — who may see a blob, what its name is — live in the service layer; the
store only promises:

* **atomic writes**: a blob written through :meth:`BlobStore.writer` becomes visible,
  whole, at :meth:`BlobWriter.commit`, or never (an aborted or interrupted write leaves
  nothing under the key, and an older blob there stays as it was);
* **ranged reads**: :meth:`BlobStore.read` streams any byte range;
* **no escape**: a key that is absolute, empty, or has ``.``/``..`` segments is refused
  with :class:`ValueError` before any I/O.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, NamedTuple

from ..registry import Registry

CHUNK = 1 << 20
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`ValueError`."""
    if not isinstance(key, str) or not key or len(key) > 1024:
        raise ValueError(f"invalid blob key {key!r}")
    for segment in key.split("/"):
        if not _SEGMENT.match(segment) or segment in (".", ".."):
            raise ValueError(f"invalid blob key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: ``""`` (everything) or a safe key, optionally ending in ``/``."""
    if prefix:
        check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


class BlobInfo(NamedTuple):
    """A committed blob: its key, its size in bytes, and when it was last written (epoch
    seconds), so that a sweeper can tell a fresh blob from an old one."""

    key: str
    size: int
    modified: float


class BlobWriter(ABC):
    """A blob being written: nothing is visible under its key until :meth:`commit`.

    It writes to ``fh``, a file of the backend's that holds the bytes out of sight (a
    temporary file, a pending multipart upload); a backend says how to publish and how to
    discard it. Used as a context manager it commits on a normal exit and aborts on an
    exception.
    """

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.size = 0
        self.done = False

    def write(self, data: bytes) -> None:
        """Add ``data`` to the end of the blob."""
        self.fh.write(data)
        self.size += len(data)

    def commit(self) -> int:
        """Make the blob visible under its key, replacing any older one; return its size."""
        self.fh.close()
        self._publish()
        self.done = True
        return self.size

    def abort(self) -> None:
        """Throw the partial blob away (idempotent; a no-op after :meth:`commit`)."""
        if not self.done:
            self.done = True
            self._discard()

    def _publish(self) -> None:
        """After ``fh`` is closed: make its bytes visible (closing may be enough)."""
        return None

    @abstractmethod
    def _discard(self) -> None:
        """Drop the bytes written so far."""

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class BlobStore(ABC):
    """Primitives over keys and bytes; see the module docstring for the promises."""

    #: a short name for logs and the admin API: "local", "s3"
    kind = "abstract"

    # -- primitives ----------------------------------------------------------------------
    @abstractmethod
    def writer(self, key: str) -> BlobWriter:
        """Start an atomic write of the blob ``key``."""

    @abstractmethod
    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` of blob ``key`` (``end=None``: to its end).

        Raises :class:`FileNotFoundError` if there is no such blob (before yielding).
        """

    @abstractmethod
    def size(self, key: str) -> int | None:
        """The size of blob ``key`` in bytes, or ``None`` if there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove blob ``key``; removing a missing blob is not an error."""

    @abstractmethod
    def list_with_age(self, prefix: str = "") -> Iterator[BlobInfo]:
        """A :class:`BlobInfo` of every committed blob whose key starts with ``prefix``,
        sorted by key."""

    @abstractmethod
    def sweep_unfinished(self, before: float) -> int:
        """Drop what writes begun before ``before`` (epoch seconds) and never committed nor
        aborted left behind — a server killed mid-upload leaves its temporary file or
        pending multipart upload — and return how many were dropped. Writes begun later
        may still be in flight and are left alone."""

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections and clients (the store is not used afterwards)."""

    # -- derived ---------------------------------------------------------------------------
    def list(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every committed blob whose key starts with ``prefix``, sorted."""
        return ((b.key, b.size) for b in self.list_with_age(prefix))

    def put(self, key: str, data: bytes | Iterable[bytes]) -> int:
        """Store ``data`` (bytes or an iterable of chunks) under ``key`` atomically."""
        chunks = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
        with self.writer(key) as w:
            for chunk in chunks:
                w.write(bytes(chunk))
        return w.size

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """The bytes ``[start, end)`` of blob ``key``, read whole (for small blobs)."""
        return b"".join(self.read(key, start, end))

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def append(self, key: str, data: Iterable[bytes], at: int | None = None) -> int:
        """Add ``data`` after the first ``at`` bytes of blob ``key`` (``None``: after all
        of it; a missing blob counts as empty) and return the new size.

        Bytes past ``at`` — left, say, by an append whose caller then failed to record
        it — are dropped first. The change is atomic here (a copy, then a commit over
        the old blob); backends with a native append override this.
        """
        current = self.size(key)
        keep = (current or 0) if at is None else at
        if current is not None and keep > current:
            raise ValueError(f"cannot append at {keep}: blob {key!r} has {current} bytes")
        with self.writer(key) as w:
            if current is not None and keep:
                for chunk in self.read(key, 0, keep):
                    w.write(chunk)
            for chunk in data:
                w.write(bytes(chunk))
        return w.size


#: the blob stores by URL scheme; each implementation registers itself here
blob_stores: Registry[BlobStore] = Registry("blob store")

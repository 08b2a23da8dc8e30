"""Backends by URL scheme: one small registry per pluggable concern.

A concern makes one :class:`Registry` and each implementation registers itself under its
scheme. The registries: ``blob_stores`` (``backends/blobs``: ``file://``, ``s3://``,
``memory://``), ``brokers`` (``backends/broker``: ``memory://``, ``amqp://``,
``amqps://``); the task executor is next::

    blob_stores: Registry[BlobStore] = Registry("blob store")

    @blob_stores.register("memory")
    class MemoryBlobStore(BlobStore):
        @classmethod
        def from_url(cls, url: str, **context: Any) -> MemoryBlobStore: ...

``blob_stores.open("memory://")`` then calls ``MemoryBlobStore.from_url("memory://",
**context)``. The *context* is what the platform knows besides the URL (the data
directory, an endpoint setting…); each backend takes what it needs and ignores the rest,
so a new backend never changes the callers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class UnknownBackend(ValueError):
    """A URL whose scheme no backend of the concern registered."""


class FromURL(Protocol[T_co]):
    """What a registry opens: a backend class (or any object) with ``from_url``."""

    def from_url(self, url: str, **context: Any) -> T_co:
        """A backend for ``url``; ``context`` holds platform settings it may use."""
        ...


def scheme_of(url: str) -> str:
    """The scheme of ``url`` (``s3`` of ``s3://bucket``), lower-cased; ``""`` if none."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


class Registry(Generic[T]):
    """Maps URL schemes to the backends of one concern (``kind``: "blob store", …)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._backends: dict[str, FromURL[T]] = {}

    def register(self, scheme: str) -> Callable[[Any], Any]:
        """Class decorator: open URLs ``<scheme>://…`` with the class's ``from_url``.

        A second backend for the same scheme is refused: which one wins would otherwise
        depend on import order.
        """
        scheme = scheme.lower()

        def add(backend: Any) -> Any:
            if not callable(getattr(backend, "from_url", None)):
                raise TypeError(f"{backend!r} has no from_url(url, **context)")
            if self._backends.get(scheme, backend) is not backend:
                raise ValueError(f"{self.kind} scheme {scheme!r} is already registered "
                                 f"to {self._backends[scheme]!r}")
            self._backends[scheme] = backend
            return backend

        return add

    def schemes(self) -> list[str]:
        """The registered schemes, sorted."""
        return sorted(self._backends)

    def open(self, url: str, **context: Any) -> T:
        """The backend ``url`` names, built by its ``from_url(url, **context)``.

        Raises :class:`UnknownBackend` (a :class:`ValueError`) naming the known schemes
        when no backend registered the URL's scheme.
        """
        backend = self._backends.get(scheme_of(url))
        if backend is None:
            known = ", ".join(f"{s}://" for s in self.schemes()) or "none"
            raise UnknownBackend(f"unsupported {self.kind} URL {url!r}: known schemes are "
                                 f"{known}")
        return backend.from_url(url, **context)

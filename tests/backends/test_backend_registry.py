"""The backend mechanism for any pluggable concern: the registry (URL schemes to backend
classes) and the error boundary (a library's exceptions to the platform's)."""

from __future__ import annotations

from typing import Any

import pytest

from pyconnector_server.backends.blobs import blob_stores
from pyconnector_server.backends.errors import (
    BackendError,
    BackendUnavailable,
    boundary,
    translated,
    translated_iter,
)
from pyconnector_server.backends.registry import Registry, UnknownBackend, scheme_of


class Broker:
    """A stand-in for a concern that is not blobs: the mechanism must not care."""

    def __init__(self, url: str, context: dict[str, Any]) -> None:
        self.url = url
        self.context = context


def brokers() -> Registry[Broker]:
    registry: Registry[Broker] = Registry("message broker")

    @registry.register("memory")
    class MemoryBroker(Broker):
        @classmethod
        def from_url(cls, url: str, **context: Any) -> Broker:
            return cls(url, context)

    @registry.register("AMQP")  # schemes are case-insensitive, as in URLs
    class AmqpBroker(Broker):
        @classmethod
        def from_url(cls, url: str, **context: Any) -> Broker:
            return cls(url, context)

    return registry


def test_a_url_opens_the_backend_registered_for_its_scheme() -> None:
    registry = brokers()
    broker = registry.open("amqp://guest@localhost/vhost", heartbeat=30)
    assert type(broker).__name__ == "AmqpBroker"
    assert broker.url == "amqp://guest@localhost/vhost"
    assert broker.context == {"heartbeat": 30}  # the platform's context, passed through
    assert type(registry.open("MEMORY://")).__name__ == "MemoryBroker"
    assert registry.schemes() == ["amqp", "memory"]


@pytest.mark.parametrize("url", ["redis://localhost", "memory", "", "amqp:/x"])
def test_an_unknown_scheme_is_refused_naming_the_known_ones(url: str) -> None:
    with pytest.raises(UnknownBackend) as refused:
        brokers().open(url)
    assert str(refused.value) == (f"unsupported message broker URL {url!r}: known schemes "
                                  "are amqp://, memory://")
    assert isinstance(refused.value, ValueError)  # settings checks catch ValueError


def test_a_scheme_registered_twice_is_refused() -> None:
    registry = brokers()

    class Other:
        @classmethod
        def from_url(cls, url: str, **context: Any) -> Any:
            return cls()

    with pytest.raises(ValueError, match="'memory' is already registered"):
        registry.register("memory")(Other)
    assert registry.schemes() == ["amqp", "memory"]


def test_a_backend_without_from_url_is_refused() -> None:
    with pytest.raises(TypeError, match="from_url"):
        Registry[Any]("task executor").register("local")(object)


def test_registries_are_independent() -> None:
    assert brokers().schemes() != blob_stores.schemes()
    assert blob_stores.schemes() == ["file", "memory", "s3"]


@pytest.mark.parametrize(("url", "scheme"), [
    ("s3://bucket/prefix", "s3"), ("file:///var/x", "file"), ("Memory://", "memory"),
    ("/plain/path", ""), ("", ""),
])
def test_scheme_of(url: str, scheme: str) -> None:
    assert scheme_of(url) == scheme


class LibraryDown(Exception):
    """A third-party library's exception, as a backend's dependency would raise it."""


def _translate(exc: BaseException) -> BackendError | None:
    return BackendUnavailable(f"queue unavailable: {exc}") if isinstance(exc, LibraryDown) \
        else None


def test_the_boundary_translates_the_librarys_errors_and_keeps_the_cause() -> None:
    with pytest.raises(BackendUnavailable) as raised, boundary(_translate):
        raise LibraryDown("connection refused")
    assert raised.value.message == "queue unavailable: connection refused"
    assert isinstance(raised.value.__cause__, LibraryDown)
    assert (raised.value.status, raised.value.retry_after) == (503, 5)
    assert (BackendError("x").status, BackendError("x").retry_after) == (502, None)


def test_the_boundary_lets_other_errors_through_unchanged() -> None:
    own = BackendError("already ours")
    for exc in (FileNotFoundError("no such blob"), ValueError("bad key"), own):
        with pytest.raises(type(exc)) as raised, boundary(_translate):
            raise exc
        assert raised.value is exc


def test_translated_wraps_a_primitive_and_translated_iter_a_stream() -> None:
    @translated(_translate)
    def send(ok: bool) -> str:
        """Send a message."""
        if not ok:
            raise LibraryDown("timeout")
        return "sent"

    assert send(True) == "sent" and send.__doc__ == "Send a message."
    with pytest.raises(BackendUnavailable):
        send(False)

    def chunks() -> Any:
        yield b"first"
        raise LibraryDown("reset")

    stream = translated_iter(chunks(), _translate)
    assert next(stream) == b"first"
    with pytest.raises(BackendUnavailable, match="reset"):
        next(stream)

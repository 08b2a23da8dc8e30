"""The platform's errors for a failing backend, and the helpers that translate into them.

A backend catches its library's exceptions (botocore, and later pika, paho, celery) at
its own boundary and re-raises them as :class:`BackendError` ``from`` the original, so
that nothing above the backend knows which library failed; the server renders them in
its one JSON error shape (``pyconnector_server.errors``):

* :class:`BackendUnavailable` — the service cannot be reached or is overloaded
  (connection refused, timeouts, throttling): **503** with ``Retry-After``, since trying
  again later may work;
* :class:`BackendError` — the service answered but refused or failed (access denied, no
  such bucket, bad credentials): **502**, since the fault is upstream and retrying will
  not help until an operator acts.

Errors that are part of a backend's contract stay as they are (a missing blob is
:class:`FileNotFoundError`, an unsafe key :class:`ValueError`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class BackendError(Exception):
    """A backend's service failed; ``message`` is safe to show to a client."""

    #: the HTTP status the server answers
    status = 502
    #: seconds a client should wait before trying again (None: no hint)
    retry_after: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BackendUnavailable(BackendError):
    """A backend's service cannot be reached now (connection, timeout, overload)."""

    status = 503
    retry_after = 5


#: maps a library's exception to ours, or None for one that is not the library's
Translate = Callable[[BaseException], BackendError | None]


@contextmanager
def boundary(translate: Translate) -> Iterator[None]:
    """Re-raise what ``translate`` recognises as a :class:`BackendError`, ``from`` it."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        ours = translate(exc)
        if ours is None:
            raise
        raise ours from exc


def translated(translate: Translate) -> Callable[[F], F]:
    """Decorator: run a backend primitive inside :func:`boundary`."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with boundary(translate):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def translated_iter(chunks: Iterator[Any], translate: Translate) -> Iterator[Any]:
    """``chunks``, with what it raises while iterated translated (a streamed read)."""
    with boundary(translate):
        yield from chunks

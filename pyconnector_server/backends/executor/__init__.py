"""Task executors by URL: ``local://`` (the default: subprocesses of the platform) and,
next, ``celery://`` (workers on a cluster). See :mod:`.base` for the promises."""

from __future__ import annotations

from ..registry import UnknownBackend
from .base import Execution, Executor, Job, Limits, Outcome, executors

__all__ = ["Execution", "Executor", "Job", "Limits", "Outcome", "UnknownBackend",
           "executors", "open_executor"]

DEFAULT_URL = "local://"


def open_executor(url: str = "", **context: object) -> Executor:
    """The executor a URL names (``""``: ``local://``)."""
    from . import local  # noqa: F401 - imported for its registration

    return executors.open(url or DEFAULT_URL, **context)

"""Task executors by URL: ``local://`` (the default: subprocesses of the platform) and
``celery://`` (workers on a cluster). See :mod:`.base` for the promises."""

from __future__ import annotations

from ..registry import UnknownBackend
from .base import PYTHON, Execution, Executor, Job, Limits, Outcome, Slots, executors

__all__ = ["PYTHON", "Execution", "Executor", "Job", "Limits", "Outcome", "Slots",
           "UnknownBackend", "executors", "open_executor"]

DEFAULT_URL = "local://"


def open_executor(url: str = "", **context: object) -> Executor:
    """The executor a URL names (``""``: ``local://``)."""
    from . import celery, local  # noqa: F401 - imported for their registration

    return executors.open(url or DEFAULT_URL, **context)

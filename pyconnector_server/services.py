"""The service registry: what each platform service brings, and the list of them.

A service (SOS, the Data Lake Service, …) lives in its own package and declares there,
in one :class:`Service` value named ``SERVICE``, everything the core needs to run it: its
routers, the module defining its tables, what it opens and closes while the platform
runs, and its CLI commands. The core - :func:`pyconnector_server.app.create_app`, the
``pyconnector`` command, :func:`pyconnector_server.models.load_all` - loops over
:func:`registered`, so adding a service is its own package plus one line in
:data:`REGISTERED`. ``docs/contributing.md`` ("Adding a service") walks through it.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import State

from .db import Database

# The registered services, one line each: the module whose ``SERVICE`` declares it. They
# open in this order (after the core: settings, database) and close in reverse.
REGISTERED = (
    "pyconnector_server.sos.service",
    "pyconnector_server.datalake.service",
    "pyconnector_server.routing.service",
    "pyconnector_server.tasks.service",
    "pyconnector_server.workflow.service",
)

Opener = Callable[[State], AbstractAsyncContextManager[None]]
CommandAdder = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
CommandRunner = Callable[[Database, str, dict[str, Any]], int]


@dataclass(frozen=True)
class Service:
    """One platform service, as the core sees it.

    ``open(state)`` is an async context manager entered in the app's lifespan: it finds
    the core's resources on ``state`` (``settings``, ``db``), opens its own, hangs them on
    ``state`` for its routes (see :func:`pyconnector_server.deps.state`) and closes them
    when it exits. ``add_commands(subparsers)`` adds the CLI commands named in
    ``commands``; ``run_command(db, command, args)`` runs one of them (``args`` holds the
    parsed options, ``action`` and ``tenant`` among them) and answers the exit status.
    """

    name: str
    routers: Sequence[APIRouter]
    tables: str  # the module that defines its tables in the shared metadata
    open: Opener
    commands: Sequence[str] = ()
    add_commands: CommandAdder | None = None
    run_command: CommandRunner | None = None


def load(module: str) -> Service:
    """The :class:`Service` that ``module`` declares as ``SERVICE``."""
    service = getattr(importlib.import_module(module), "SERVICE", None)
    if not isinstance(service, Service):
        raise TypeError(f"{module} is registered as a service but its SERVICE is "
                        f"{type(service).__name__}, not a pyconnector_server.services.Service")
    return service


def registered() -> list[Service]:
    """The platform's services, in the order they open."""
    return [load(m) for m in REGISTERED]


def migration_dirs(services: Sequence[Service] | None = None) -> list[Path]:
    """Where Alembic finds revisions: the core's ``migrations/versions``, then each
    service's ``migrations`` folder beside its tables module, if it has one.

    A service's revisions live with the service, so adding one touches no core folder.
    They still form one chain with the core's (each revises the newest before it), so a
    database records one head, as it did when every revision lived in the core."""
    dirs = [Path(__file__).parent / "migrations" / "versions"]
    for service in registered() if services is None else services:
        spec = importlib.util.find_spec(service.tables)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"service {service.name}: no module {service.tables}")
        folder = Path(spec.origin).parent / "migrations"
        if folder.is_dir():
            dirs.append(folder)
    return dirs

"""The Workflow Service as a platform service: its routes, tables and engine. It runs
its steps on the Task Service's runner, so it opens after the Task Service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import State

from ..services import Service
from .engine import Engine
from .routes import router
from .store import WorkflowStore


@asynccontextmanager
async def open_workflow(state: State) -> AsyncIterator[None]:
    engine = Engine(WorkflowStore(state.db), state.tasks)
    state.workflow = engine
    engine.start()
    try:
        yield
    finally:
        await engine.stop()


SERVICE = Service(name="workflow", routers=[router],
                  tables="pyconnector_server.workflow.tables", open=open_workflow)

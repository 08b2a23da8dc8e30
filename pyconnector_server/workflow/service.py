"""The Workflow Service as a platform service: its routes, tables, engine and scheduler.
It runs its steps on the Task Service's runner, so it opens after the Task Service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.datastructures import State

from ..services import Service
from .engine import Engine
from .routes import router
from .schedule_routes import router as schedule_router
from .schedule_store import ScheduleStore
from .scheduler import Scheduler
from .store import WorkflowStore


@asynccontextmanager
async def open_workflow(state: State) -> AsyncIterator[None]:
    engine = Engine(WorkflowStore(state.db), state.tasks)
    # Missed slots: the Task Service's catch-up time, one policy for every schedule.
    scheduler = Scheduler(engine, ScheduleStore(state.db),
                          catch_up_ms=state.settings.task_catch_up_seconds * 1000)
    state.workflow = engine
    state.workflow_scheduler = scheduler
    engine.start()
    scheduler.start()
    try:
        yield
    finally:
        try:
            await scheduler.stop()
        finally:
            await engine.stop()


SERVICE = Service(name="workflow", routers=[router, schedule_router],
                  tables="pyconnector_server.workflow.tables", open=open_workflow)

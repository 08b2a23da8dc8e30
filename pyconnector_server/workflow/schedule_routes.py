"""Scheduling a process definition: ``PUT``/``DELETE
/WorkflowService/v1.0/definitions/{name}/{version}/schedule``.

The body is the Task Service's schedule (:class:`~pyconnector_server.tasks.bodies.ScheduleIn`)
with a cron pattern only: ``cronPatternType`` (fixed, interval or cron) and its fields
(``minute``, ``hour``, ``day``, ``month``, ``weekday``, or ``cron``), ``timeZone``
(default UTC) and ``recurrenceLimit`` (0: for ever). Each slot prepares and initiates an
instance (see :mod:`.scheduler`); the definition's ``schedule`` shows the pattern, the
slots fired and the next one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..auth import Tenant
from ..bodies import json_body
from ..clock import now_ms
from ..deps import Auth, call
from ..errors import bad_request
from ..openapi import answers
from ..tasks import schedule
from ..tasks.bodies import ScheduleIn
from .engine import Engine
from .routes import DEF_PATH, PREFIX, Definition, Flows, ProcessName, ProcessVersion

router = APIRouter(prefix=PREFIX, tags=["Workflow Service"])


def cron_values(body: ScheduleIn, now: int) -> dict[str, Any]:
    """The definition's columns for the cron pattern in ``body``; a 400 naming the field
    for a bad value (the Task Service's checks and words)."""
    if body.delayedTime is not None:
        raise bad_request("delayedTime: a definition is scheduled with a cron pattern "
                          "(cronPatternType and its fields, or cron); to run it once, "
                          "prepare and initiate an instance", "delayedTime")
    if body.cronPatternType is None and body.cron is None:
        raise bad_request("cronPatternType: a schedule needs a cron pattern: "
                          "cronPatternType (fixed, interval, cron) and its fields, or cron",
                          "cronPatternType")
    fields = {k: (None if v is None else str(v)) for k, v in (
        ("minute", body.minute), ("hour", body.hour), ("day", body.day),
        ("month", body.month), ("weekday", body.weekday))}
    cron = schedule.cron_expression(body.cronPatternType or "cron", cron=body.cron, **fields)
    tz = body.timeZone or "UTC"
    schedule.resolve_zone(tz)  # a 400 naming timeZone for one it does not know
    limit = schedule.recurrence_limit(body.recurrenceLimit or 0)
    return dict(cron=cron, time_zone=tz, recurrence_limit=limit, fired=0,
                next_fire_ms=schedule.next_slot(cron, now, tz))


@router.put(DEF_PATH + "/schedule", summary="Schedule the definition: an instance is "
            "prepared and initiated at each slot of a cron pattern (the Task Service's "
            "recurrent schedule)", responses=answers(Definition, 200, "Scheduled", 404))
async def set_schedule(name: str = ProcessName, version: str = ProcessVersion,
                       t: Tenant = Auth, body: ScheduleIn = json_body(ScheduleIn, ""),
                       e: Engine = Flows) -> Any:
    values = cron_values(body, now_ms())
    return await call(e.store.update_definition, t, name, version, **values)


@router.delete(DEF_PATH + "/schedule", summary="End the definition's schedule (its "
               "instances go on)", responses=answers(Definition, 200, "Unscheduled", 404))
async def delete_schedule(name: str = ProcessName, version: str = ProcessVersion,
                          t: Tenant = Auth, e: Engine = Flows) -> Any:
    return await call(e.store.update_definition, t, name, version, cron=None,
                      time_zone=None, recurrence_limit=0, fired=0, next_fire_ms=None)

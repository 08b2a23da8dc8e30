"""Scheduled process definitions, in-process on both stores: the Task Service's cron
options (bad values a 400 naming the field), an instance prepared and initiated per slot
(trigger ``schedule``), the recurrence limit, missed slots, unscheduling, and one
instance per slot when two platform processes share PostgreSQL (the claim).

Slots are yearly (``0 0 1 1 *``): the running scheduler never reaches one during a
test, and the tests fire them by calling :meth:`Scheduler.tick` with a ``now`` just
past the slot, in the app's own event loop.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from pyconnector.times import parse_time
from pyconnector_server.workflow.tables import definition

TS = "/TaskService/v1.0"
WF = "/WorkflowService/v1.0"
SCHEDULE = f"{WF}/definitions/proc/v1/schedule"
YEARLY = {"cronPatternType": "fixed", "minute": "0", "hour": "0", "day": "1", "month": "1"}
DAY = 86_400_000
CODE = b"import sys\nprint('step', sys.argv[1])\n"


@pytest.fixture
def api_any(make_app: Any, own_db_url: str) -> Any:
    """An app on each store; on PostgreSQL in a schema of its own (another process's
    scheduler on a shared schema would fire these definitions' slots)."""
    return make_app(own_db_url)


def _task(api: Any, job: str) -> str:
    if api.get(f"{TS}/projects/wf").status_code == 404:
        assert api.post(f"{TS}/projects", json={"projectName": "wf"}).status_code == 201
    r = api.post(f"{TS}/projects/wf/tasks", json={"jobName": job})
    assert r.status_code == 201, r.text
    tid = str(r.json()["jobId"])
    r = api.post(f"{TS}/projects/wf/tasks/{tid}/deploy", files={"file": ("main.py", CODE)},
                 data={"runTime": "py", "args": json.dumps([job])})
    assert r.status_code == 200, r.text
    return tid


def _pipeline(api: Any) -> tuple[str, str]:
    """Definition ``proc`` ``v1``: a → b; the base task ids."""
    a, b = _task(api, "a"), _task(api, "b")
    r = api.post(f"{WF}/definitions", json={
        "processName": "proc", "processVersion": "v1",
        "links": [{"source": a, "destination": b}]})
    assert r.status_code == 201, r.text
    return a, b


def _schedule(api: Any, **extra: Any) -> dict[str, Any]:
    r = api.put(SCHEDULE, json={**YEARLY, **extra})
    assert r.status_code == 200, r.text
    return dict(r.json()["schedule"])


def _next_ms(api: Any) -> int | None:
    nxt = api.get(f"{WF}/definitions/proc/v1").json()["schedule"]["nextRun"]
    return None if nxt is None else parse_time(nxt)


def _tick(api: Any, now: int) -> list[int]:
    """One pass of the app's workflow scheduler at ``now``, in the app's event loop."""
    scheduler = api.app.state.workflow_scheduler
    return list(api.client.portal.call(scheduler.tick, now))


def _instances(api: Any) -> list[dict[str, Any]]:
    return list(api.get(f"{WF}/instances", params={"processName": "proc"}).json())


def _wait(api: Any, iid: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        inst = api.get(f"{WF}/instances/{iid}").json()
        if inst["state"] in ("SUCCEEDED", "FAILED", "ABORTED"):
            return dict(inst)
        assert time.monotonic() < deadline, inst
        time.sleep(0.05)


def test_a_schedule_is_set_shown_and_ended(api_any: Any) -> None:
    _pipeline(api_any)
    shown = _schedule(api_any, timeZone="IST", recurrenceLimit="3")
    assert shown["cron"] == "0 0 1 1 *" and shown["timeZone"] == "IST"
    assert shown["recurrenceLimit"] == 3 and shown["fired"] == 0
    # midnight of 1 January in India is 18:30 UTC the day before
    assert shown["nextRun"].startswith("31-DEC-") and shown["nextRun"].endswith(
        " 18:30:00.000 UTC"), shown
    listed = api_any.get(f"{WF}/definitions").json()
    assert [d["schedule"]["cron"] for d in listed] == ["0 0 1 1 *"]
    r = api_any.put(SCHEDULE, json={"cronPatternType": "interval", "hour": "2"})
    assert r.status_code == 200 and r.json()["schedule"]["cron"] == "0 */2 * * *", r.text
    assert r.json()["schedule"]["timeZone"] == "UTC"  # the default, not the one before
    r = api_any.delete(SCHEDULE)
    assert r.status_code == 200 and r.json()["schedule"] is None, r.text
    assert api_any.get(f"{WF}/definitions/proc/v1").json()["schedule"] is None
    assert _tick(api_any, 4102444800000 + 1000) == []  # 2100: nothing scheduled fires


@pytest.mark.parametrize("body, field", [
    ({"cronPatternType": "fixed", "hour": "24"}, "hour"),
    ({"cronPatternType": "fixed", "minute": "x"}, "minute"),
    ({"cronPatternType": "fixed", "day": "31", "month": "2"}, "day"),
    ({"cronPatternType": "fixed", "day": "13", "weekday": "5"}, "weekday"),
    ({"cronPatternType": "fixed", "month": "1" * 101}, "month"),
    ({"cronPatternType": "interval", "minute": "0"}, "minute"),
    ({"cronPatternType": "interval", "hour": "2", "day": "3"}, "day"),
    ({"cronPatternType": "fixed"}, "cronPatternType"),
    ({"cronPatternType": "weird", "hour": "4"}, "cronPatternType"),
    ({"cronPatternType": "cron", "hour": "4"}, "hour"),
    ({"cron": "bad"}, "cron"),
    ({"cron": "* * * *"}, "cron"),
    ({"cron": "* * 31 2 *"}, "cron"),
    ({"cronPatternType": "interval", "cron": "* * * * *"}, "cron"),
    ({"cron": "0 4 * * *", "timeZone": "Mars/Base"}, "timeZone"),
    ({"cron": "0 4 * * *", "timeZone": "../../etc/passwd"}, "timeZone"),
    ({"cron": "0 4 * * *", "recurrenceLimit": -1}, "recurrenceLimit"),
    ({"cron": "0 4 * * *", "recurrenceLimit": 2**31}, "recurrenceLimit"),
    ({"cron": "0 4 * * *", "recurrenceLimit": "often"}, "recurrenceLimit"),
    ({"delayedTime": "15-07-2019 12:35:56.789 IST"}, "delayedTime"),
    ({}, "cronPatternType"),
    ({"timeZone": "IST"}, "cronPatternType"),
    ({"colour": "red"}, "colour"),
])
def test_bad_schedules_are_400_naming_the_field(api: Any, body: dict[str, Any],
                                                field: str) -> None:
    _pipeline(api)
    _schedule(api)
    r = api.put(SCHEDULE, json=body)
    assert r.status_code == 400, (body, r.text)
    assert r.json()["field"] == field, (body, r.text)
    assert r.json()["message"].startswith(f"{field}: ") or field == "colour", r.text
    assert api.get(f"{WF}/definitions/proc/v1").json()["schedule"]["cron"] == "0 0 1 1 *"


def test_unknown_definitions_and_other_tenants_get_404(api: Any) -> None:
    _pipeline(api)
    for path in (SCHEDULE, f"{WF}/definitions/proc/v2/schedule",
                 f"{WF}/definitions/other/v1/schedule"):
        if path != SCHEDULE:
            assert api.put(path, json=YEARLY).status_code == 404
            assert api.delete(path).status_code == 404
    other = {"x-api-key": api.new_key(f"wf-other-{time.monotonic_ns()}")}
    assert api.put(SCHEDULE, json=YEARLY, headers=other).status_code == 404
    assert api.delete(SCHEDULE, headers=other).status_code == 404
    assert api.get(f"{WF}/definitions/proc/v1").json()["schedule"] is None  # untouched


def test_each_slot_prepares_and_initiates_an_instance(api_any: Any) -> None:
    a, b = _pipeline(api_any)
    _schedule(api_any)
    slot = _next_ms(api_any)
    assert slot is not None
    assert _tick(api_any, slot - 1) == []  # not yet due
    started = _tick(api_any, slot + 500)
    assert len(started) == 1
    iid = f"I{started[0]}"
    done = _wait(api_any, iid)
    assert done["state"] == "SUCCEEDED" and done["trigger"] == "schedule", done
    assert done["startedOn"] is not None
    assert {s["baseTaskId"] for s in done["tasks"]} == {a, b}
    assert all(s["copiedTaskId"] not in (a, b) and s["run"] == 1 for s in done["tasks"])
    history = api_any.get(f"{WF}/instances/{iid}/history").json()
    assert [h["baseTaskId"] for h in history] == [a, b]
    shown = api_any.get(f"{WF}/definitions/proc/v1").json()["schedule"]
    assert shown["fired"] == 1
    nxt = _next_ms(api_any)
    assert nxt is not None and nxt - slot in (365 * DAY, 366 * DAY)  # the next new year
    assert _tick(api_any, slot + 1000) == []  # the slot fired once
    for base in (a, b):  # the originals never ran
        assert api_any.get(f"{TS}/projects/wf/tasks/{base}/runs").json() == []


def test_the_recurrence_limit_ends_the_schedule(api_any: Any) -> None:
    _pipeline(api_any)
    _schedule(api_any, recurrenceLimit=2)
    fired = []
    for _ in range(2):
        slot = _next_ms(api_any)
        assert slot is not None
        fired += _tick(api_any, slot + 200)
    assert len(fired) == 2
    shown = api_any.get(f"{WF}/definitions/proc/v1").json()["schedule"]
    assert shown["fired"] == 2 and shown["nextRun"] is None, shown
    assert _tick(api_any, 4102444800000 + 1000) == []  # nothing more, ever
    instances = _instances(api_any)
    assert [i["trigger"] for i in instances] == ["schedule", "schedule"]
    for inst in instances:
        assert _wait(api_any, inst["instanceId"])["state"] == "SUCCEEDED"


def test_missed_slots_fire_once_or_are_skipped(api: Any) -> None:
    _pipeline(api)
    # every midnight of January (UTC)
    assert api.put(SCHEDULE, json={"cron": "0 0 * 1 *"}).status_code == 200
    slot = _next_ms(api)
    assert slot is not None
    # three daily slots missed, the latest 10 minutes ago (within the default hour of
    # catch-up): one instance for all of them
    assert len(_tick(api, slot + 2 * DAY + 600_000)) == 1
    assert api.get(f"{WF}/definitions/proc/v1").json()["schedule"]["fired"] == 1
    assert _next_ms(api) == slot + 3 * DAY
    # the next one missed by two hours, more than the catch-up time: skipped, not counted
    assert _tick(api, slot + 3 * DAY + 2 * 3600_000) == []
    assert api.get(f"{WF}/definitions/proc/v1").json()["schedule"]["fired"] == 1
    assert _next_ms(api) == slot + 4 * DAY
    assert len(_instances(api)) == 1


def test_a_slot_whose_tasks_are_gone_passes_and_others_still_fire(api: Any) -> None:
    a, _ = _pipeline(api)
    r = api.post(f"{WF}/definitions", json={
        "processName": "other", "processVersion": "v1",
        "links": [{"source": _task(api, "c"), "destination": "end"}]})
    assert r.status_code == 201, r.text
    _schedule(api)
    assert api.put(f"{WF}/definitions/other/v1/schedule", json=YEARLY).status_code == 200
    assert api.delete(f"{TS}/projects/wf/tasks/{a}").status_code == 200
    slot = _next_ms(api)
    assert slot is not None
    started = _tick(api, slot + 100)
    assert len(started) == 1  # "other"'s instance; proc's slot passed without one
    assert _instances(api) == []
    assert api.get(f"{WF}/instances/I{started[0]}").json()["processName"] == "other"
    shown = api.get(f"{WF}/definitions/proc/v1").json()["schedule"]
    assert shown["fired"] == 1 and parse_time(shown["nextRun"]) > slot


def test_the_running_scheduler_fires_a_due_slot(api_any: Any) -> None:
    """The scheduler started with the platform, not a test's tick: a slot made due
    now (in the database) gets its instance within a few of its ticks."""
    _pipeline(api_any)
    _schedule(api_any)
    with api_any.app.state.db.write() as conn:
        conn.execute(sa.update(definition).values(
            next_fire_ms=int(time.time() * 1000)))
    deadline = time.monotonic() + 30
    while not _instances(api_any):
        assert time.monotonic() < deadline, "no instance"
        time.sleep(0.05)
    inst = _wait(api_any, _instances(api_any)[0]["instanceId"])
    assert inst["trigger"] == "schedule" and inst["state"] == "SUCCEEDED", inst


def test_two_processes_make_one_instance_per_slot(make_app: Any, own_pg_url: str) -> None:
    """Two platform processes on one PostgreSQL database tick on the same slots at
    the same moment: the claim (a compare-and-set on the next slot) lets one fire."""
    first, second = make_app(own_pg_url), make_app(own_pg_url)
    _pipeline(first)
    _schedule(first, recurrenceLimit=5)
    for n in range(1, 6):
        slot = _next_ms(first)
        assert slot is not None
        results: dict[str, list[int]] = {}
        barrier = threading.Barrier(2)

        def tick(name: str, app: Any, slot: int = slot, barrier: Any = barrier,
                 results: dict[str, list[int]] = results) -> None:
            barrier.wait()  # both tick at once
            results[name] = _tick(app, slot + 100)

        threads = [threading.Thread(target=tick, args=(k, app))
                   for k, app in (("first", first), ("second", second))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert sorted(len(v) for v in results.values()) == [0, 1], results
        assert len(_instances(first)) == n
    assert _next_ms(first) is None

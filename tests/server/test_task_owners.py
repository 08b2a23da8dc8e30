"""Owners of task runs (pyconnector_server.tasks.owners), on both stores: heartbeats, the
sweep that marks the runs of gone processes ``lost`` (and their tasks' status), a clean
stop, SQLite's "every other owner is gone" at start, and the app's own owner row.

PostgreSQL runs in a schema of the test's own (``own_db_url``): the session's server
process on the shared schema has an owner row and sweeps too.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from conftest import open_app

from pyconnector_server.auth import ensure_tenant
from pyconnector_server.db import Database
from pyconnector_server.models import load_all
from pyconnector_server.settings import Settings
from pyconnector_server.tasks.owners import BEAT_SECONDS, Heartbeat, beat_seconds
from pyconnector_server.tasks.runner import Runner
from pyconnector_server.tasks.store import TaskStore
from pyconnector_server.tasks.tables import owner, run

A, B, C = "a" * 32, "b" * 32, "c" * 32
LIVE = 60_000  # ms: an owner timeout that will not lapse during a test
LAPSED = -1_000  # a beat with this timeout leaves a row that lapsed a second ago


@pytest.fixture
def store(own_db_url: str, tmp_path: Path) -> Iterator[TaskStore]:
    load_all()
    settings = Settings.load({"data_dir": str(tmp_path), "db": own_db_url}, environ={})
    tmp_path.mkdir(exist_ok=True)
    db = Database(settings.database_url)
    db.migrate()
    try:
        yield TaskStore(db)
    finally:
        db.close()


class World:
    """A tenant's project in ``store``, and helpers to make tasks and runs in it."""

    def __init__(self, store: TaskStore) -> None:
        self.store = store
        self.tenant = ensure_tenant(store.db, "owners")
        store.add_project(self.tenant, "p")
        self.count = 0

    def task(self, status: str = "RUNNING", **values: Any) -> int:
        self.count += 1
        tid = int(self.store.add_task(self.tenant, "p", f"j{self.count}", "task")["jobId"][1:])
        self.store.update_task(tid, status=status, **values)
        return tid

    def run(self, task_id: int, owner_id: str, state: str = "running") -> int:
        number = self.store.add_run(task_id, "start", owner_id)
        assert number is not None
        if state != "queued":
            self.store.update_run(task_id, number, state=state)
        return number

    def state(self, task_id: int, number: int) -> dict[str, Any]:
        return self.store.run(task_id, number)

    def status(self, task_id: int) -> str:
        return str(self.store.row_by_id(task_id).status)


def _owners(store: TaskStore) -> list[str]:
    return [r.owner for r in store.owners()]


# -- heartbeats ----------------------------------------------------------------------------
def test_a_beat_makes_the_row_renews_it_and_makes_it_again_once_removed(
        store: TaskStore) -> None:
    before = int(time.time() * 1000)
    assert store.beat(A, LIVE, "host-a", 4242) is False  # its first: made
    (row,) = store.owners()
    assert (row.owner, row.host, row.pid) == (A, "host-a", 4242)
    # milliseconds of now (the database's clock on PostgreSQL: the same machine here)
    assert abs(row.beat_ms - before) < 5_000, (row.beat_ms, before)
    assert row.expires_ms - row.beat_ms == LIVE
    assert row.started_ms == row.beat_ms
    time.sleep(0.01)  # so that the renewal's time differs from the first's
    assert store.beat(A, LIVE) is True  # renewed, not made again
    (again,) = store.owners()
    assert again.beat_ms > row.beat_ms and again.expires_ms - again.beat_ms == LIVE
    assert (again.started_ms, again.host, again.pid) == (row.started_ms, "host-a", 4242)
    # taken for gone (its row lapsed and was swept): the next beat says so, and makes it
    assert store.beat(A, LAPSED) is True
    store.sweep(B)
    assert _owners(store) == []
    assert store.beat(A, LIVE) is False
    assert _owners(store) == [A]


def test_beats_come_four_times_per_timeout_and_at_least_every_five_seconds() -> None:
    assert beat_seconds(60) == BEAT_SECONDS == 5.0
    assert beat_seconds(8) == 2.0
    assert beat_seconds(1) == 0.25
    assert beat_seconds(0.1) == 0.25  # not a busy loop


# -- the sweep -----------------------------------------------------------------------------
def test_the_sweep_marks_the_unfinished_runs_of_a_lapsed_owner_lost(store: TaskStore) -> None:
    w = World(store)
    store.beat(A, LIVE)
    store.beat(B, LAPSED)
    live = w.task()
    live_run = w.run(live, A)
    plain, recurrent, paused_one = w.task(), w.task(next_fire_ms=4_102_444_800_000), w.task()
    runs = [(plain, w.run(plain, B)), (recurrent, w.run(recurrent, B, "queued")),
            (paused_one, w.run(paused_one, B, "paused"))]
    done = w.task("COMPLETED")
    done_run = w.run(done, B, "succeeded")
    shared = w.task()  # one run of the dead owner, one of a live one still running
    w.run(shared, B)
    shared_live = w.run(shared, A)

    assert store.sweep(A) == 4
    for task_id, number in runs + [(shared, 1)]:
        r = w.state(task_id, number)
        assert r["state"] == "lost" and "heartbeat" in r["reason"], r
        assert r["endedOn"] is not None, r
    assert w.status(plain) == "FAILED" and w.status(paused_one) == "FAILED"
    assert w.status(recurrent) == "SCHEDULED"  # a slot is pending: it waits for it
    # untouched: a live owner's runs, a run that had ended, and a task with a live run
    assert w.state(live, live_run)["state"] == "running" and w.status(live) == "RUNNING"
    assert w.state(shared, shared_live)["state"] == "running"
    assert w.status(shared) == "RUNNING"
    assert w.state(done, done_run)["state"] == "succeeded" and w.status(done) == "COMPLETED"
    assert _owners(store) == [A]  # the lapsed row is removed
    assert store.sweep(A) == 0  # nothing more to do


def test_runs_of_an_owner_with_no_row_are_lost(store: TaskStore) -> None:
    """A process that never beat here (or whose row is gone): nobody answers for them."""
    w = World(store)
    store.beat(A, LIVE)
    orphan, mine = w.task(), w.task()
    w.run(orphan, C)
    w.run(mine, A)
    assert store.sweep(A) == 1
    assert w.state(orphan, 1)["state"] == "lost" and w.status(orphan) == "FAILED"
    assert w.state(mine, 1)["state"] == "running"
    assert _owners(store) == [A]


def test_a_process_is_never_gone_to_itself(store: TaskStore) -> None:
    """Its own row lapsed (its heartbeat was late): its own sweep leaves it and its runs
    alone, another process's sweep does not."""
    w = World(store)
    store.beat(A, LAPSED)
    mine = w.task()
    w.run(mine, A)
    assert store.sweep(A) == 0 and store.sweep(A, alone=True) == 0
    assert w.state(mine, 1)["state"] == "running" and _owners(store) == [A]
    assert store.sweep(B) == 1
    assert w.state(mine, 1)["state"] == "lost" and _owners(store) == []


def test_a_sweep_with_nothing_gone_writes_nothing(store: TaskStore) -> None:
    w = World(store)
    store.beat(A, LIVE)
    store.beat(B, LIVE)
    t = w.task()
    w.run(t, B)
    w.run(t, A, "queued")
    with store.db.read() as conn:
        rows = conn.execute(sa.select(run).order_by(run.c.id)).all()
        owners = conn.execute(sa.select(owner).order_by(owner.c.owner)).all()
    assert store.sweep(A) == 0
    with store.db.read() as conn:
        assert conn.execute(sa.select(run).order_by(run.c.id)).all() == rows
        assert conn.execute(sa.select(owner).order_by(owner.c.owner)).all() == owners


def test_alone_every_other_owner_is_gone_however_fresh_its_row(store: TaskStore) -> None:
    """SQLite at start: one process per database, so another owner's row is a leftover."""
    w = World(store)
    store.beat(A, LIVE)
    store.beat(B, LIVE)
    theirs, mine = w.task(), w.task()
    w.run(theirs, B, "paused")
    w.run(mine, A)
    assert store.sweep(A, alone=True) == 1
    assert w.state(theirs, 1)["state"] == "lost" and w.status(theirs) == "FAILED"
    assert w.state(mine, 1)["state"] == "running"
    assert _owners(store) == [A]


def test_retire_removes_the_row_and_loses_only_its_own_unfinished_runs(
        store: TaskStore) -> None:
    w = World(store)
    store.beat(A, LIVE)
    store.beat(B, LIVE)
    mine, ended, theirs = w.task(), w.task("STOPPED"), w.task()
    w.run(mine, A)
    w.run(ended, A, "stopped")
    w.run(theirs, B)
    assert store.retire(A) == 1
    assert w.state(mine, 1)["state"] == "lost" and w.status(mine) == "FAILED"
    assert "stopped while it ran" in w.state(mine, 1)["reason"]
    assert w.state(ended, 1)["state"] == "stopped" and w.status(ended) == "STOPPED"
    assert w.state(theirs, 1)["state"] == "running" and w.status(theirs) == "RUNNING"
    assert _owners(store) == [B]


# -- the heartbeat loop --------------------------------------------------------------------
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _until(what: str, done: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what}: not in {timeout} s"
        await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_the_heartbeat_opens_sweeps_beats_and_retires(store: TaskStore) -> None:
    w = World(store)
    store.beat(B, LAPSED)
    theirs = w.task()
    w.run(theirs, B)
    beat = Heartbeat(store, A, timeout_seconds=0.5, alone=False)
    assert beat.interval == 0.25
    await beat.open()
    try:
        (row,) = store.owners()  # made, with where it runs; the lapsed one swept
        assert (row.owner, row.host, row.pid) == (A, socket.gethostname(), os.getpid())
        assert w.state(theirs, 1)["state"] == "lost"
        mine = w.task()
        w.run(mine, A)
        await _until("a heartbeat renewing the row",
                     lambda: store.owners()[0].expires_ms > row.expires_ms)
        store.beat(C, LAPSED)
        later = w.task()
        w.run(later, C)
        await _until("a heartbeat's sweep", lambda: w.state(later, 1)["state"] == "lost")
        assert w.state(mine, 1)["state"] == "running"
    finally:
        await beat.close()
    assert _owners(store) == []
    assert w.state(mine, 1)["state"] == "lost"  # what its stop left unfinished


@pytest.mark.anyio
async def test_a_tick_beats_then_sweeps_and_says_when_this_process_was_taken_for_gone(
        store: TaskStore, caplog: pytest.LogCaptureFixture) -> None:
    w = World(store)
    beat = Heartbeat(store, A, timeout_seconds=60, alone=False)  # not opened: no loop
    store.beat(C, LAPSED)
    t = w.task()
    w.run(t, C)
    with caplog.at_level("WARNING", logger="pyconnector.tasks"):
        assert await beat.tick() == 1
    assert "was taken for stopped" in caplog.text  # it had no row: someone removed it
    assert _owners(store) == [A] and w.state(t, 1)["state"] == "lost"
    caplog.clear()
    with caplog.at_level("WARNING", logger="pyconnector.tasks"):
        assert await beat.tick() == 0
    assert "taken for stopped" not in caplog.text


@pytest.mark.anyio
async def test_alone_a_start_takes_every_other_owner_for_gone_and_later_beats_do_not(
        store: TaskStore) -> None:
    w = World(store)
    store.beat(B, LIVE)
    before = w.task()
    w.run(before, B)
    beat = Heartbeat(store, A, timeout_seconds=60, alone=True)
    await beat.open()
    try:
        assert w.state(before, 1)["state"] == "lost" and _owners(store) == [A]
        store.beat(C, LIVE)  # a process that came after (two on SQLite, by mistake)
        after = w.task()
        w.run(after, C)
        assert await beat.tick() == 0
        assert w.state(after, 1)["state"] == "running"
        assert sorted(_owners(store)) == [A, C]
    finally:
        await beat.close()


def test_an_app_keeps_its_owner_row_while_it_runs_and_removes_it_at_stop(
        tmp_path: Path, own_db_url: str) -> None:
    with open_app(tmp_path / "app", own_db_url, task_owner_timeout_seconds=7) as api:
        runner = api.app.state.tasks
        (row,) = runner.store.owners()
        assert row.owner == runner.owner and row.expires_ms - row.beat_ms == 7_000
        assert row.pid == os.getpid()
        url = api.app.state.settings.database_url
    db = Database(url)
    try:
        assert TaskStore(db).owners() == []
    finally:
        db.close()


# -- the runner's directories ----------------------------------------------------------------
def test_the_runner_makes_its_directory_at_open_not_on_each_use(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings.load({"data_dir": str(data), "task_dir": str(tmp_path / "work")},
                             environ={})
    runner = Runner(store=None, executor=None, settings=settings)
    assert runner.task_dir(1, 2) == data.resolve() / "tasks" / "t1" / "T2"
    assert not (data / "tasks").exists()  # a path is only a path
    runner.open()
    assert stat.S_IMODE((data / "tasks").stat().st_mode) == 0o700
    assert (tmp_path / "work").is_dir()

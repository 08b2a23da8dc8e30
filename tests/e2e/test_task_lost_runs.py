"""Runs of a platform process that is gone, on PostgreSQL shared by two ``pyconnector serve``
processes: the other process marks them ``lost`` once the dead one's heartbeat lapses
(``--task-owner-timeout-seconds``), and at once when it stopped cleanly.

The task is deployed and started through ``a`` (deploys live in the data dir of the
process that took them); ``b`` only watches, through the shared tables.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psycopg
import pytest
from conftest import start_server, wait_for
from test_task_schedules import LONG, _alive, _client, _end_orphan, _ms, _now_ms, _task

pytestmark = pytest.mark.e2e

TIMEOUT = ("--task-owner-timeout-seconds", "3")


def _owner_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM task_owner").fetchone()[0])


def test_the_runs_of_a_killed_process_are_lost_once_its_heartbeat_lapses(
        tmp_path: Path, own_pg_url: str) -> None:
    a = start_server(tmp_path / "a", own_pg_url, *TIMEOUT)
    b = start_server(tmp_path / "b", own_pg_url, *TIMEOUT)
    orphan = None
    try:
        key = a.new_key()
        with _client(a, key) as ca, _client(b, key) as cb:
            path = _task(ca, "long", code=LONG)
            assert ca.post(f"{path}/start").json()["run"] == 1
            wait_for("the long run to print its pid",
                     lambda: ca.get(f"{path}/runs/1/log").text.startswith("pid "), 20)
            orphan = int(ca.get(f"{path}/runs/1/log").text.split()[1])
            assert _owner_rows(own_pg_url) == 2
            # Longer than the timeout: a's heartbeats keep its run its own meanwhile.
            time.sleep(4.0)
            assert cb.get(f"{path}/runs/1").json()["state"] == "running"
            assert cb.get(path).json()["status"] == "RUNNING"

            killed_ms = _now_ms()
            a.stop(signal.SIGKILL)
            wait_for("the task's process to die with its platform",
                     lambda: not _alive(orphan), 10)
            # b sweeps after each of its heartbeats (0.75 s): lost within 3 s + a beat
            wait_for("b to mark a's run lost",
                     lambda: cb.get(f"{path}/runs/1").json()["state"] == "lost", 20)
            run = cb.get(f"{path}/runs/1").json()
            assert "heartbeat" in run["reason"], run
            # not before a's last heartbeat (at most 0.75 s before the kill) lapsed
            assert _ms(run["endedOn"]) - killed_ms >= 2_000, (run, killed_ms)
            assert cb.get(path).json()["status"] == "FAILED"
            assert _owner_rows(own_pg_url) == 1  # a's row went with it; b's stays
    finally:
        b.stop()
        a.stop(signal.SIGKILL)
        _end_orphan(orphan)
    assert _owner_rows(own_pg_url) == 0  # b stopped cleanly: its row is gone


def test_the_runs_of_a_cleanly_stopped_process_are_lost_at_once(
        tmp_path: Path, own_pg_url: str) -> None:
    """The default timeout (60 s): nothing waits for it when ``a`` says it is going."""
    a = start_server(tmp_path / "a", own_pg_url)
    b = start_server(tmp_path / "b", own_pg_url)
    orphan = None
    try:
        key = a.new_key()
        with _client(a, key) as ca, _client(b, key) as cb:
            path = _task(ca, "long", code=LONG)
            assert ca.post(f"{path}/start").json()["run"] == 1
            wait_for("the long run to print its pid",
                     lambda: ca.get(f"{path}/runs/1/log").text.startswith("pid "), 20)
            orphan = int(ca.get(f"{path}/runs/1/log").text.split()[1])
            a.stop()
            wait_for("the run's process to end with its platform's stop",
                     lambda: not _alive(orphan), 10)
            run = cb.get(f"{path}/runs/1").json()
            assert run["state"] in ("stopped", "lost") and run["endedOn"], run
            assert cb.get(path).json()["status"] in ("STOPPED", "FAILED")
            assert _owner_rows(own_pg_url) == 1
    finally:
        b.stop()
        a.stop(signal.SIGKILL)
        _end_orphan(orphan)

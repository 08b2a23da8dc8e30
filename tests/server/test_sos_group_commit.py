"""Group commit of observation inserts (sos/commit.py), on SQLite and PostgreSQL.

Requests that arrive while a write is under way are written together in the next
transaction; each caller gets its own answer once that transaction is committed, and a
caller whose work fails fails alone: the group is rolled back and the others are
written again, each in a transaction of its own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import wait_for

from pyconnector_server.sos.commit import GroupCommit

SOS = "/api/sos/v2.0"


class Probe:
    """A table of its own, and a group whose first write waits until released, so the
    callers that come meanwhile queue up behind it."""

    def __init__(self, api: Any) -> None:
        self.db = api.app.state.db
        self.group = GroupCommit(self.db)
        self.table = f"gc_probe_{uuid.uuid4().hex[:8]}"
        with self.db.write() as conn:
            conn.execute(sa.text(f"CREATE TABLE {self.table} (k VARCHAR(20) PRIMARY KEY)"))
        self.release = threading.Event()
        self.answers: dict[str, Any] = {}
        self.threads: list[threading.Thread] = []

    def insert(self, key: str, fail: bool = False, hold: bool = False
               ) -> Callable[[sa.Connection], str]:
        def work(conn: sa.Connection) -> str:
            conn.execute(sa.text(f"INSERT INTO {self.table} (k) VALUES (:k)"), {"k": key})
            if hold:
                assert self.release.wait(30)
            if fail:
                raise ValueError(f"{key} refused")
            return f"{key} stored"
        return work

    def call(self, key: str, **kw: bool) -> None:
        def run() -> None:
            try:
                self.answers[key] = self.group.run(self.insert(key, **kw))
            except Exception as exc:  # noqa: BLE001 - the answer under test
                self.answers[key] = exc

        th = threading.Thread(target=run)
        th.start()
        self.threads.append(th)

    def join(self) -> None:
        for th in self.threads:
            th.join(60)
            assert not th.is_alive()

    def keys(self) -> set[str]:
        with self.db.read() as conn:
            return set(conn.execute(sa.text(f"SELECT k FROM {self.table}")).scalars())

    def queue_behind_a_held_write(self, calls: list[tuple[str, bool]]) -> None:
        """``first`` holds the write; ``calls`` (key, fail) queue meanwhile; then release."""
        self.call("first", hold=True)
        wait_for("the first write to start", lambda: self.group._writing)
        for key, fail in calls:
            self.call(key, fail=fail)
        wait_for("the callers to queue", lambda: len(self.group._queue) == len(calls))
        self.release.set()
        self.join()


@pytest.fixture
def probe(make_app: Any, own_db_url: str) -> Probe:
    # A schema of its own on PostgreSQL: the probe's table must not outlive the test in
    # the shared one (the migration test compares that schema with the code's tables).
    return Probe(make_app(own_db_url))


def test_callers_that_wait_share_one_transaction_and_get_their_own_answer(
        probe: Probe) -> None:
    probe.queue_behind_a_held_write([(f"k{i}", False) for i in range(5)])
    assert probe.answers == {"first": "first stored",
                             **{f"k{i}": f"k{i} stored" for i in range(5)}}
    assert probe.keys() == {"first", *(f"k{i}" for i in range(5))}
    assert (probe.group.groups, probe.group.jobs) == (2, 6)  # the first, then the five


def test_a_failing_caller_fails_alone_and_the_others_are_stored(probe: Probe) -> None:
    probe.queue_behind_a_held_write([("a", False), ("bad", True), ("b", False)])
    assert probe.answers["a"] == "a stored" and probe.answers["b"] == "b stored"
    assert isinstance(probe.answers["bad"], ValueError)
    assert str(probe.answers["bad"]) == "bad refused"
    assert probe.keys() == {"first", "a", "b"}  # nothing of the failed caller's
    # The group of three was rolled back and its callers ran alone (outside any group).
    assert (probe.group.groups, probe.group.jobs) == (1, 1)


def test_a_failing_write_alone_raises_and_stores_nothing(probe: Probe) -> None:
    with pytest.raises(ValueError, match="solo refused"):
        probe.group.run(probe.insert("solo", fail=True))
    assert probe.group.run(probe.insert("next")) == "next stored"
    assert probe.keys() == {"next"}


def test_groups_are_bounded(probe: Probe) -> None:
    probe.group.max_group = 2
    probe.queue_behind_a_held_write([(f"k{i}", False) for i in range(5)])
    assert probe.keys() == {"first", *(f"k{i}" for i in range(5))}
    assert (probe.group.groups, probe.group.jobs) == (4, 6)  # 1 + 2 + 2 + 1


# -- through the route -------------------------------------------------------------------
def _obs(sensor: str, value: Any, time: int) -> dict[str, Any]:
    return {"sensor": sensor, "record": [{"starttime": time, "output": [
        {"name": "temperature", "value": value}]}]}


def test_concurrent_insert_requests_each_get_their_own_answer(
        api_any: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests queued behind a held insert are written in one group; a request with a bad
    item and one with a bad body get their own answers, the others are stored."""
    api = api_any
    api.post(f"{SOS}/features", json={"name": "f"})
    for s in ("s1", "s2", "s3"):
        r = api.post(f"{SOS}/sensors", json={"name": s, "feature": "f",
                                             "outputs": [{"name": "temperature"}]})
        assert r.json()["code"] == 201
    store = api.app.state.sos
    release = threading.Event()
    real = store.write_values

    def held_write_values(conn: Any, rows: Any) -> None:
        rows = list(rows)
        if any(r[2] == 1000 for r in rows):  # the first request's
            assert release.wait(30)
        real(conn, rows)

    monkeypatch.setattr(store, "write_values", held_write_values)
    bodies = {
        "first": {"observations": [_obs("s1", 1.0, 1000)]},
        "good2": {"observations": [_obs("s2", 2.0, 2000)]},
        "bad-item": {"observations": [_obs("s3", 3.0, 3000), _obs("s3", "warm", 4000)]},
        "bad-body": {"observations": "none"},
        "good3": {"observations": [_obs("s1", 5.0, 5000), _obs("s2", 6.0, 5000)]},
    }
    answers: dict[str, Any] = {}

    def post(name: str) -> None:
        answers[name] = api.post(f"{SOS}/observations", json=bodies[name]).json()

    threads = [threading.Thread(target=post, args=("first",))]
    threads[0].start()
    wait_for("the first insert to hold the write", lambda: store.group._writing)
    for name in ("good2", "bad-item", "bad-body", "good3"):
        threads.append(threading.Thread(target=post, args=(name,)))
        threads[-1].start()
    # The bad body is refused before it queues; the three others wait for the group.
    wait_for("three inserts to queue", lambda: len(store.group._queue) == 3)
    release.set()
    for th in threads:
        th.join(60)
    assert answers["first"]["code"] == 201
    assert answers["good2"]["code"] == 201
    assert answers["good3"]["code"] == 201
    assert answers["good3"]["message"] == "2 record(s) of 2 observation(s) stored"
    assert answers["bad-item"]["code"] == 207
    assert answers["bad-item"]["results"][1]["field"] == "observations[1].record[0]" \
        ".output[0].value", answers["bad-item"]
    assert answers["bad-body"]["code"] == 400 and answers["bad-body"]["field"] == "observations"
    assert store.group.groups >= 2 and store.group.jobs >= 4
    r = api.get(f"{SOS}/observations", params={"feature": "f", "timeFormat": "epoch"})
    stored = sorted((o["sensor"], rec["starttime"]) for o in r.json()["observations"]
                    for rec in o["record"])
    assert stored == [("s1", 1000), ("s1", 5000), ("s2", 2000), ("s2", 5000), ("s3", 3000)]

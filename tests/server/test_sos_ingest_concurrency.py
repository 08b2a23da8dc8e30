"""A large CSV ingest does not hold the store's write lock while it reads and checks the
file: small writes made meanwhile (feature creates, JSON observation inserts) answer
without error and soon, on SQLite (one writer at a time) and PostgreSQL. The ingest stays
all or nothing, and refuses (409) to store values checked against sensors or property
types that changed before its write began."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from pyconnector_server.sos import csvio

SOS = "/api/sos/v2.0"
SENSORS = [f"big-s{i}" for i in range(10)]


def _ok(r: Any, code: int = 201) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == code, body
    return body


def _write_csv(path: Path, rows: int) -> None:
    i = np.arange(rows)
    pd.DataFrame({
        "time": pd.to_datetime(1_704_067_200_000 + (i // len(SENSORS)) * 1000, unit="ms")
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sensor": np.array(SENSORS)[i % len(SENSORS)],
        "temperature": np.round(20 + (i % 100) / 10, 1),
        "status": np.array(["ok", "warn"])[i % 2],
    }).to_csv(path, index=False, lineterminator="\n")


class SmallWrites:
    """A thread making small writes until stopped, timing each."""

    def __init__(self, post: Any) -> None:
        self.post = post
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            for path, body in (
                ("/features", {"name": f"small-{uuid.uuid4().hex[:8]}"}),
                ("/observations", {"observations": [{"sensor": "small-s", "record": [
                    {"starttime": 1_800_000_000_000 + n, "output": [
                        {"name": "temperature", "value": n}]}]}]}),
            ):
                t0 = time.perf_counter()
                try:
                    r = self.post(f"{SOS}{path}", json=body)
                    code = r.json().get("code") if r.status_code == 200 else r.status_code
                    if code != 201:
                        self.errors.append(f"{path}: {r.status_code} {r.text[:200]}")
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    self.errors.append(f"{path}: {exc!r}")
                self.latencies.append(time.perf_counter() - t0)
            time.sleep(0.02)

    def __enter__(self) -> SmallWrites:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(60)


def _seed(post: Any) -> None:
    _ok(post(f"{SOS}/features", json={"name": "big-f"}))
    outputs = [{"name": "temperature", "type": "quantity"}, {"name": "status", "type": "text"}]
    for s in [*SENSORS, "small-s"]:
        _ok(post(f"{SOS}/sensors", json={"name": s, "feature": "big-f", "outputs": outputs}))


# -- a large ingest against a real server, with small writes meanwhile ----------------------
ROWS = 300_000
# Small writes wait at most for the ingest's inserts (a few seconds for 300k records), far
# below SQLite's 30 s busy timeout, after which they used to fail.
MAX_LATENCY_S = 15.0


def test_small_writes_during_a_large_ingest_succeed_soon(any_server: Any,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    _write_csv(path, ROWS)
    headers = {"x-api-key": any_server.new_key()}
    with httpx.Client(base_url=any_server.url, headers=headers, timeout=600) as client, \
            httpx.Client(base_url=any_server.url, headers=headers, timeout=120) as small:
        _seed(client.post)
        answer: dict[str, Any] = {}

        def upload() -> None:
            with open(path, "rb") as fh:
                answer["r"] = client.post(f"{SOS}/observations/csv", content=fh,
                                          headers={"content-type": "text/csv"})

        uploader = threading.Thread(target=upload)
        t0 = time.perf_counter()
        with SmallWrites(small.post) as writes:
            uploader.start()
            uploader.join(600)
        took = time.perf_counter() - t0
        body = _ok(answer["r"])
        assert body["records"] == ROWS and body["values"] == 2 * ROWS, body
        assert not writes.errors, writes.errors[:5]
        assert len(writes.latencies) >= 10, writes.latencies
        worst = max(writes.latencies)
        store = "postgresql" if any_server.db else "sqlite"
        print(f"\n{store}: ingest {took:.1f} s, {len(writes.latencies)} small writes, "
              f"max latency {worst:.2f} s")
        assert worst < MAX_LATENCY_S, worst
        r = client.get(f"{SOS}/observations", params={"sensor": SENSORS[3], "format": "csv"})
        assert r.status_code == 200 and r.text.count("\n") == ROWS // len(SENSORS) + 1


# -- the check itself runs outside the write transaction ------------------------------------
CHECK_S = 8.0  # how long the slowed-down check of the file lasts


def test_small_writes_do_not_wait_for_the_check_of_a_file(
        api_any: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the check slowed down to ~8 s, writes made meanwhile answer within ~2 s.

    Before, the ingest held the write transaction (all of SQLite) while it checked."""
    api = api_any
    _seed(api.post)
    path = tmp_path / "f.csv"
    _write_csv(path, 4000)
    text = path.read_text()
    monkeypatch.setattr(csvio, "BLOCK_BYTES", len(text) // 16)
    real = csvio.parse_times
    blocks = 17

    def slow_parse_times(values: Any) -> Any:
        time.sleep(CHECK_S / blocks)
        return real(values)

    monkeypatch.setattr(csvio, "parse_times", slow_parse_times)
    answer: dict[str, Any] = {}

    def upload() -> None:
        answer["r"] = api.post(f"{SOS}/observations/csv", content=text,
                               headers={"content-type": "text/csv"})

    uploader = threading.Thread(target=upload)
    t0 = time.perf_counter()
    with SmallWrites(api.post) as writes:
        time.sleep(0.3)
        uploader.start()
        uploader.join(120)
    took = time.perf_counter() - t0
    body = _ok(answer["r"])
    assert body["records"] == 4000, body
    assert took > CHECK_S * 0.8, took  # the check really was slow
    assert not writes.errors, writes.errors[:5]
    assert len(writes.latencies) >= 10, writes.latencies
    assert max(writes.latencies) < 2.5, sorted(writes.latencies)[-5:]


# -- what changed between the check and the write -------------------------------------------
def _upload_after(api: Any, monkeypatch: pytest.MonkeyPatch, change: Any, text: str) -> Any:
    """Upload ``text``, running ``change`` between the check and the write."""
    real = csvio._check

    def check_then_change(*args: Any) -> Any:
        out = real(*args)
        change()
        return out

    monkeypatch.setattr(csvio, "_check", check_then_change)
    return api.post(f"{SOS}/observations/csv", content=text, headers={"content-type": "text/csv"})


def _count(api: Any, sensor: str) -> int:
    r = api.get(f"{SOS}/observations", params={"sensor": sensor})
    return sum(len(o["record"]) for o in r.json()["observations"]) if r.status_code == 200 else 0


def test_sensor_deleted_during_the_check_stores_nothing(
        api_any: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    api = api_any
    _seed(api.post)
    text = ("time,sensor,temperature\n2024-01-01T00:00:00Z,big-s0,1\n"
            "2024-01-01T00:00:00Z,big-s1,2\n")

    def recreate() -> None:  # same name, new id: the checked id is gone
        assert api.delete(f"{SOS}/sensors/big-s1").json()["code"] == 200
        _ok(api.post(f"{SOS}/sensors", json={"name": "big-s1", "feature": "big-f"}))

    body = _ok(_upload_after(api, monkeypatch, recreate, text), 409)
    assert body["field"] == "sensor" and "big-s1" in body["message"], body
    assert _count(api, "big-s0") == 0 and _count(api, "big-s1") == 0


def test_property_made_with_another_type_during_the_check_stores_nothing(
        api_any: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    api = api_any
    _seed(api.post)
    text = "time,sensor,temperature,level\n2024-01-01T00:00:00Z,big-s0,1,5\n"

    def make_text_property() -> None:
        _ok(api.post(f"{SOS}/observedProperties", json={"name": "level", "type": "text"}))

    body = _ok(_upload_after(api, monkeypatch, make_text_property, text), 409)
    assert body["field"] == "level", body
    assert _count(api, "big-s0") == 0


def test_property_made_with_the_same_type_during_the_check_is_used(
        api_any: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    api = api_any
    _seed(api.post)
    text = "time,sensor,level\n2024-01-01T00:00:00Z,big-s0,5\n"

    def make_property() -> None:
        _ok(api.post(f"{SOS}/observedProperties", json={"name": "level", "unit": "m"}))

    body = _ok(_upload_after(api, monkeypatch, make_property, text))
    assert body["values"] == 1
    assert api.get(f"{SOS}/observedProperties/level").json()["unit"] == "m"
    assert _count(api, "big-s0") == 1

"""The sweeper on both blob stores (local directory, S3 on moto): stale temporary files,
unfinished writes and blobs no catalog row points at go; fresh ones and catalog files stay."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dls_helper import Dls

from pyconnector_server.sweeper import Sweeper

HOUR = 3600


@pytest.fixture(params=["local", "s3"])
def blob_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "local":
        return {}
    return {"blobs": request.getfixturevalue("s3_url"),
            "s3_endpoint_url": request.getfixturevalue("s3_endpoint")}


def _used(dls: Dls) -> int:
    r = dls.api.get("/api/dls/admin/storage")
    assert r.status_code == 200, r.text
    return r.json()["used-bytes"]


def _orphan(dls: Dls, size: int = 1000) -> str:
    """A blob as a kill between the blob's commit and the catalog's leaves it."""
    s = dls.api.app.state.dls
    key = s.new_blob_key(_tenant(dls))
    s.blobs.put(key, b"o" * size)
    return key


def _tenant(dls: Dls) -> Any:
    from pyconnector_server.auth import tenant_for_key

    return tenant_for_key(dls.api.app.state.db, dls.api.api_key)


def _sweeper(dls: Dls, grace: float = HOUR) -> Sweeper:
    app = dls.api.app
    return Sweeper(app.state.db, app.state.dls.blobs, [app.state.settings.data_path / "tmp"],
                   grace, 0)


def test_orphan_blobs_older_than_the_grace_period_go_catalog_files_stay(
        make_app: Callable[..., Any], blob_settings: dict[str, str]) -> None:
    dls = Dls(make_app(**blob_settings), "alice")
    assert dls.upload("alice", b"kept file", "kept.txt").status_code == 201
    assert dls.upload("alice", b"v1", "app.txt").status_code == 201
    assert dls.upload("alice", b"+v2", "app.txt", mode="APPEND").status_code == 200
    catalog = sorted(dls.blobs())
    orphan = _orphan(dls, 1234)
    foreign = "other/not-a-dls-key"  # not a key the DLS makes: never its to remove
    dls.api.app.state.dls.blobs.put(foreign, b"f")
    s = _sweeper(dls)
    # Fresh: within the grace period, as a blob whose catalog row is being written.
    assert not s.sweep(time.time() - HOUR)
    assert orphan in {k for k, _ in dls.blobs()}
    # Old: gone, and only it.
    report = s.sweep(time.time() + 5)
    assert (report.orphan_blobs, report.orphan_bytes) == (1, 1234)
    assert sorted(dls.blobs()) == sorted([*catalog, (foreign, 1)])
    assert sum(size for k, size in catalog) == _used(dls) == 9 + 5
    assert dls.download("alice", dls.uri("alice", "app.txt")).content == b"v1+v2"


def test_temporary_files_older_than_the_grace_period_go(
        make_app: Callable[..., Any], blob_settings: dict[str, str]) -> None:
    dls = Dls(make_app(**blob_settings), "alice")
    tmp = dls.api.app.state.settings.data_path / "tmp"
    tmp.mkdir(exist_ok=True)
    old, fresh = tmp / "old.csv", tmp / "fresh.csv"
    old.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y")
    two_hours_ago = time.time() - 2 * HOUR
    os.utime(old, (two_hours_ago, two_hours_ago))
    report = _sweeper(dls).sweep(time.time() - HOUR)
    assert report.temp_files == 1
    assert sorted(p.name for p in tmp.iterdir()) == ["fresh.csv"]


def test_unfinished_blob_writes_go_once_old(
        make_app: Callable[..., Any], blob_settings: dict[str, str]) -> None:
    dls = Dls(make_app(**blob_settings), "alice")
    blobs = dls.api.app.state.dls.blobs
    w = blobs.writer(dls.api.app.state.dls.new_blob_key(_tenant(dls)))
    for _ in range(20):  # past the S3 multipart size: parts are on the server
        w.write(b"z" * (1 << 20))
    # The server is killed now: the write is never committed nor aborted.
    s = _sweeper(dls)
    assert s.sweep(time.time() - HOUR).unfinished_writes == 0
    assert s.sweep(time.time() + 5).unfinished_writes == 1
    assert s.sweep(time.time() + 5).unfinished_writes == 0
    if blobs.kind == "local":
        assert not any(blobs.tmp.iterdir())
        w.fh.close()
    else:
        w.fh.closed = True  # (the dead server's file object: nothing to upload at exit)


def test_the_lifespan_sweeps_at_start_and_then_periodically(
        tmp_path: Path, app_opener: Callable[..., Any], blob_settings: dict[str, str]) -> None:
    data = tmp_path / "data"
    with app_opener(data, **blob_settings) as api:
        dls = Dls(api, "alice")
        assert dls.upload("alice", b"kept", "k.txt").status_code == 201
        at_start = _orphan(dls)
        (data / "tmp").mkdir(exist_ok=True)
        (data / "tmp" / "cut-upload.csv").write_bytes(b"partial")
        api_key, keys = api.api_key, dls.keys
    time.sleep(1.1)  # S3 keeps whole seconds: the leftovers are older than the restart
    settings = {**blob_settings, "sweep_grace_seconds": 0, "sweep_interval_seconds": 1}
    with app_opener(data, **settings) as api:
        api.api_key = api_key  # the same tenant and users as before the restart
        dls = Dls(api, "bob")
        dls.keys.update(keys)
        _wait(lambda: at_start not in {k for k, _ in dls.blobs()}
              and not any((data / "tmp").iterdir()))
        later = _orphan(dls)  # a leftover of another server on the same store
        _wait(lambda: later not in {k for k, _ in dls.blobs()})
        assert [s for _, s in dls.blobs()] == [4] == [_used(dls)]
        assert dls.download("alice", dls.uri("alice", "k.txt")).content == b"kept"


def _wait(done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the sweeper did not run in time"
        time.sleep(0.1)


def test_a_store_that_fails_does_not_stop_the_sweeper(
        make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    dls = Dls(make_app(), "alice")
    s = Sweeper(dls.api.app.state.db, dls.api.app.state.dls.blobs, [], 0, 0.05)
    calls = []

    def flaky(before: float) -> Any:
        calls.append(before)
        if len(calls) == 1:
            raise ConnectionError("store down")
        raise asyncio.CancelledError  # stop the loop after the second sweep

    monkeypatch.setattr(s, "sweep", flaky)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(s.run())
    assert len(calls) == 2 and calls[0] == s.started  # the first sweep counts from start



def test_a_blob_store_that_is_down_is_logged_in_one_line(
        make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from pyconnector_server.backends.errors import BackendUnavailable

    dls = Dls(make_app(), "alice")
    s = Sweeper(dls.api.app.state.db, dls.api.app.state.dls.blobs, [], 0, 0.05)
    calls = []

    def down(before: float) -> Any:
        calls.append(before)
        if len(calls) == 1:
            raise BackendUnavailable("blob storage unavailable: ConnectTimeoutError")
        raise asyncio.CancelledError

    monkeypatch.setattr(s, "sweep", down)
    with caplog.at_level("WARNING", logger="pyconnector"), pytest.raises(asyncio.CancelledError):
        asyncio.run(s.run())
    failed = [r for r in caplog.records if "sweep failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].exc_info is None
    assert "blob storage unavailable" in failed[0].getMessage()

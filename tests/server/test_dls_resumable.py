"""Resumable Data Lake uploads (POST /file/resumable, PUT /file/resumable, GET
/file/status/{filename}, PUT /file/status) against in-process apps."""

from __future__ import annotations

import hashlib
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from dls_helper import Dls

from pyconnector_server.datalake.resumable import ROOT, sweep_sessions

R = "/file/resumable"
DATA = bytes(range(256)) * 40  # 10240 bytes


def _open(dls: Dls, user: str, size: int = len(DATA), filename: str = "big.bin",
          **params: Any) -> httpx.Response:
    return dls.call("POST", user, R, params={"filename": filename, "sizeInBytes": size,
                                             **params})


def _chunk(dls: Dls, user: str, uri: str, data: bytes, start: int, total: int = len(DATA),
           **headers: str) -> httpx.Response:
    rng = {"content-range": f"bytes {start}-{start + len(data) - 1}/{total}"} if data else {}
    return dls.call("PUT", user, R, params={"file-uri": uri}, content=data,
                    headers={**rng, **headers})


def _status(dls: Dls, user: str, filename: str = "big.bin", headers: Any = None,
            **params: Any) -> httpx.Response:
    return dls.call("GET", user, f"/file/status/{filename}", params=params,
                    headers=headers or {})


def _done(dls: Dls, user: str, uri: str, status: str = "UPLOADED") -> httpx.Response:
    return dls.call("PUT", user, "/file/status", params={"file-uri": uri, "status": status})


def _staged(api: Any) -> list[Path]:
    root = api.app.state.settings.data_path / ROOT
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_chunks_at_the_stored_offset_make_the_file(api_any) -> None:
    dls = Dls(api_any, "alice")
    r = _open(dls, "alice", directory="lake", savepoint="v1")
    assert r.status_code == 201, r.text
    uri = r.json()["uri"]
    assert uri == dls.uri("alice", "lake/v1/big.bin")
    assert r.json() == {"uri": uri, "offset": 0, "size-bytes": len(DATA), "status": "RESUMED"}
    r = _chunk(dls, "alice", uri, DATA[:4000], 0)
    assert r.status_code == 200 and r.json()["offset"] == 4000, r.text
    assert _status(dls, "alice", directory="lake", savepoint="v1").json()["offset"] == 4000
    # A chunk at another offset is refused, naming the offset stored; nothing changes.
    for start in (0, 3000, 5000):
        r = _chunk(dls, "alice", uri, DATA[start:start + 100], start)
        assert r.status_code == 409, r.text
        assert "send from offset 4000" in r.json()["message"]
        assert r.headers["upload-offset"] == "4000"
    assert dls.download("alice", uri).status_code == 404  # not a file before it is whole
    r = _chunk(dls, "alice", uri, DATA[4000:], 4000)
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert dls.download("alice", uri).content == DATA
    assert _status(dls, "alice", directory="lake", savepoint="v1").json()["status"] == \
        "UPLOADED"
    # Completing again (a client whose answer was lost) answers the same, stores nothing.
    again = _done(dls, "alice", uri)
    assert again.status_code == 201 and again.json() == r.json()
    assert dls.found("alice") == ["big.bin"]
    r = _chunk(dls, "alice", uri, b"x", 0)
    assert r.status_code == 409 and "already uploaded" in r.json()["message"]


def test_tcup_flow_form_fields_text_answers_and_explicit_completion(api) -> None:
    dls = Dls(api, "alice")
    r = dls.call("POST", "alice", R, params={"filename": "t.csv", "sizeInBytes": 6},
                 files={"comment": (None, "from RFT"), "metadata": (None, "site=pune,rate=5")},
                 headers={"accept": "text/plain"})
    assert r.status_code == 201, r.text
    uri = r.text
    assert uri == dls.uri("alice", "t.csv") and r.headers["content-type"].startswith(
        "text/plain")
    r = dls.call("PUT", "alice", R, params={"file-uri": uri, "offset": 0}, content=b"a,b\n")
    assert r.json()["offset"] == 4
    r = _status(dls, "alice", "t.csv..resume", headers={"accept": "text/plain"})
    assert r.status_code == 200 and r.text == uri
    assert _done(dls, "alice", uri, "PAUSED").json()["status"] == "PAUSED"
    r = _done(dls, "alice", uri)
    assert r.status_code == 409 and "4 of 6 bytes" in r.json()["message"]
    assert _done(dls, "alice", uri, "RESUMED").json()["status"] == "RESUMED"
    # Reopened with the same size: it goes on where it was.
    assert _open(dls, "alice", 6, "t.csv").json()["offset"] == 4
    r = dls.call("PUT", "alice", R, params={"file-uri": uri, "offset": 4}, content=b"1\n")
    assert r.status_code == 201, r.text
    info = dls.search("alice", filename="t.csv").json()["result"][0]
    assert info["comment"] == "from RFT"
    meta = {m["name"]: m["value"] for m in info["metadata"]}
    assert meta["site"] == "pune" and meta["rate"] == "5"
    assert dls.download("alice", uri).content == b"a,b\n1\n"


def test_reopened_with_another_size_or_restart_starts_over(api) -> None:
    dls = Dls(api, "alice")
    uri = _open(dls, "alice").json()["uri"]
    _chunk(dls, "alice", uri, DATA[:100], 0)
    r = _open(dls, "alice", 50)
    assert r.status_code == 201 and r.json()["offset"] == 0
    _chunk(dls, "alice", uri, DATA[:20], 0, 50)
    assert _open(dls, "alice", 50).json()["offset"] == 20  # the same size: resumed
    assert _open(dls, "alice", 50, restart="true").json()["offset"] == 0  # unless told
    assert _chunk(dls, "alice", uri, DATA[:50], 0, 50).status_code == 201
    assert dls.download("alice", uri).content == DATA[:50]


def test_sessions_of_other_users_and_tenants_are_invisible(api) -> None:
    dls = Dls(api, "alice", "bob")
    uri = _open(dls, "alice").json()["uri"]
    _chunk(dls, "alice", uri, DATA[:10], 0)
    other = Dls(api.__class__(api.client, api.new_key("other-tenant"), api.app, api.new_key),
                "alice")
    for d, user in ((dls, "bob"), (other, "alice")):
        assert _chunk(d, user, uri, DATA[10:20], 10).status_code == 404
        assert _done(d, user, uri).status_code == 404
        assert _done(d, user, uri, "PAUSED").status_code == 404
        # The same name in their own area is their own (absent) session.
        assert _status(d, user).status_code == 404
    assert _status(dls, "alice").json()["offset"] == 10


def test_sizes_are_bounded_by_the_largest_upload_and_the_quota(make_app) -> None:
    from pyconnector_server.auth import tenant_for_key

    api = make_app(max_upload_bytes=1000)
    dls = Dls(api, "alice", "bob")
    r = _open(dls, "alice", 1001)
    assert r.status_code == 400 and "upload.filesize.exceeds" in r.json()["message"]
    api.app.state.dls.set_quota(tenant_for_key(api.app.state.db, api.api_key), 900)
    assert _open(dls, "alice", 600).status_code == 201
    # Another open upload of the tenant holds its declared size: 600 + 600 > 900.
    r = _open(dls, "bob", 600, "b.bin")
    assert r.status_code == 409 and "insufficient.storage" in r.json()["message"]
    assert _open(dls, "bob", 300, "b.bin").status_code == 201
    assert _staged(api) and not dls.blobs()


@pytest.mark.parametrize(("headers", "params", "field"), [
    ({"content-range": "bytes 0-99999999999999999999999/10240"}, {}, "content-range"),
    ({"content-range": "bytes 0-20479/20480"}, {}, "content-range"),  # not the size
    ({"content-range": "bytes 0-10240/10240"}, {}, "content-range"),  # past the end
    ({"content-range": "bytes -5-3/10240"}, {}, "content-range"),
    ({"content-range": "bytes 5-3/10240"}, {}, "content-range"),
    ({"content-range": "bytes */10240"}, {}, "content-range"),
    ({}, {"offset": "-1"}, "offset"),
    ({}, {"offset": "9" * 5000}, "offset"),
    ({}, {}, "content-range"),
    ({"content-range": "bytes 0-3/10240"}, {}, "content-range"),  # the body is longer
])
def test_bad_ranges_are_refused_and_store_nothing(api, headers, params, field) -> None:
    dls = Dls(api, "alice")
    uri = _open(dls, "alice").json()["uri"]
    r = dls.call("PUT", "alice", R, params={"file-uri": uri, **params}, content=DATA[:100],
                 headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and len(r.text) < 1000
    assert _status(dls, "alice").json()["offset"] == 0


@pytest.mark.parametrize("size", ["-1", "1e3", "", "9" * 5000])
def test_bad_sizes_are_refused(api, size: str) -> None:
    dls = Dls(api, "alice")
    r = _open(dls, "alice", size)  # type: ignore[arg-type]
    assert r.status_code == 400 and r.json()["field"] == "sizeInBytes", r.text
    assert not _staged(api)


@pytest.mark.parametrize(("params", "field"), [
    ({"filename": "../../etc/passwd"}, "filename"),
    ({"filename": "a/b"}, "filename"),
    ({"filename": "x\x00y"}, "filename"),
    ({"filename": "..."}, "filename"),
    ({"filename": "f", "directory": "../up"}, "directory"),
    ({"filename": "f", "savepoint": "/../x"}, "savepoint"),
    ({"filename": "f", "mode": "DESTROY"}, "mode"),
    ({"filename": "f", "metadata": "=oops"}, "metadata"),
])
def test_hostile_names_are_refused_and_touch_no_disk(api, params, field) -> None:
    dls = Dls(api, "alice")
    r = dls.call("POST", "alice", R, params={"sizeInBytes": 5, **params})
    assert r.status_code == 400, r.text
    assert r.json()["field"].startswith(field)
    assert not _staged(api)


@pytest.mark.parametrize("uri", ["t/alice/../../x", "/etc/passwd", "x", "t/alice/a\\b"])
def test_hostile_uris_are_refused(api, uri: str) -> None:
    dls = Dls(api, "alice")
    assert _chunk(dls, "alice", uri, b"x", 0, 1).status_code == 400
    assert _done(dls, "alice", uri).status_code == 400


def test_missing_sessions_and_bad_statuses(api) -> None:
    dls = Dls(api, "alice")
    uri = dls.uri("alice", "nothing.bin")
    assert _chunk(dls, "alice", uri, b"x", 0, 1).status_code == 404
    assert _done(dls, "alice", uri).status_code == 404
    assert _status(dls, "alice", "nothing.bin").status_code == 404
    uri = _open(dls, "alice").json()["uri"]
    r = _done(dls, "alice", uri, "DELETED")
    assert r.status_code == 400 and r.json()["field"] == "status"


def test_completion_checks_the_mode_as_a_plain_upload_does(api) -> None:
    dls = Dls(api, "alice")
    uri = _open(dls, "alice", 5, "f.csv").json()["uri"]
    assert _chunk(dls, "alice", uri, b"12", 0, 5).status_code == 200
    assert dls.upload("alice", b"other").status_code == 201  # the name is taken meanwhile
    r = _chunk(dls, "alice", uri, b"345", 2, 5)
    assert r.status_code == 409 and "already.exists" in r.json()["message"], r.text
    assert dls.download("alice", uri).content == b"other"
    # The staged bytes stay: reopened with OVERWRITE at the same size, it completes.
    assert _open(dls, "alice", 5, "f.csv", mode="OVERWRITE").json()["offset"] == 5
    r = _done(dls, "alice", uri)
    assert r.status_code == 200 and r.json()["message"] == "overwritten"
    assert dls.download("alice", uri).content == b"12345"


def test_the_sweeper_removes_idle_sessions(api) -> None:
    dls = Dls(api, "alice")
    uri = _open(dls, "alice").json()["uri"]
    _chunk(dls, "alice", uri, DATA[:10], 0)
    data_path = api.app.state.settings.data_path
    assert sweep_sessions(data_path, time.time() - 3600) == 0  # fresh: kept
    assert _status(dls, "alice").json()["offset"] == 10
    # Through the platform's sweeper, as the DLS service wires it (done uploads go too).
    from pyconnector_server.sweeper import Sweeper

    state = api.app.state
    sweeper = Sweeper(state.db, state.dls.blobs, [], 0, 0,
                      [partial(sweep_sessions, data_path)])
    assert sweeper.sweep(time.time() - 3600).stale_sessions == 0
    _open(dls, "alice", 3, "done.bin")
    _chunk(dls, "alice", dls.uri("alice", "done.bin"), b"abc", 0, 3)
    report = sweeper.sweep(time.time() + 1)
    assert report.stale_sessions == 2 and report
    assert not _staged(api)
    assert _status(dls, "alice").status_code == 404
    assert dls.download("alice", dls.uri("alice", "done.bin")).content == b"abc"

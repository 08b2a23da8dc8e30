"""DLS files in-process on SQLite and PostgreSQL: upload, download, modes, ranges, delete."""

from __future__ import annotations

import hashlib

import pytest
from dls_helper import Dls

CSV = b"a,b\n1,2\n3,4\n"


@pytest.fixture
def dls(api_any) -> Dls:
    return Dls(api_any, "dlsadmin", "bob")


def test_upload_then_download_round_trip_with_the_seed_uri_layout(dls: Dls) -> None:
    r = dls.upload("dlsadmin", CSV, "SampleFlightData1.csv", directory="csv",
                   savepoint="SampleFlightData1", comment="flights",
                   metadata=["site=pune,rate=5", "private@note=mine"])
    assert r.status_code == 201, r.text
    uri = dls.uri("dlsadmin", "csv/SampleFlightData1/SampleFlightData1.csv")
    assert r.json() == {"code": 201, "message": "created", "uri": uri, "size-bytes": len(CSV),
                        "sha256": hashlib.sha256(CSV).hexdigest()}
    got = dls.download("dlsadmin", uri)
    assert got.status_code == 200
    assert got.content == CSV
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["accept-ranges"] == "bytes"
    detail = dls.search("dlsadmin", uri=uri).json()["result"][0]
    assert (detail["directory"], detail["savepoint"], detail["filename"]) == (
        "csv", "SampleFlightData1", "SampleFlightData1.csv")
    assert detail["comment"] == "flights" and detail["created-by"] == "dlsadmin"
    assert {m["name"]: (m["value"], m["privacy"]) for m in detail["metadata"]} == {
        "site": ("pune", "public"), "rate": ("5", "public"),
        "private@note": ("mine", "private"), "dls:lineage": ("CREATED", "system")}


def test_tcup_directory_form_with_leading_slash_is_the_same_directory(dls: Dls) -> None:
    assert dls.upload("dlsadmin", CSV, "x.csv", directory="/D1/D2").status_code == 201
    assert dls.download("dlsadmin", dls.uri("dlsadmin", "D1/D2/x.csv")).content == CSV


def test_restrict_is_the_default_and_refuses_an_existing_file(dls: Dls) -> None:
    assert dls.upload("dlsadmin", b"one").status_code == 201
    r = dls.upload("dlsadmin", b"two")
    assert r.status_code == 409
    assert r.json()["message"].startswith("already.exists")
    assert dls.download("dlsadmin", dls.uri("dlsadmin", "f.csv")).content == b"one"
    assert len(dls.blobs()) == 1


def test_overwrite_replaces_content_and_frees_the_old_blob(dls: Dls) -> None:
    dls.upload("dlsadmin", b"one", metadata="k=1")
    r = dls.upload("dlsadmin", b"second", mode="OVERWRITE")
    assert (r.status_code, r.json()["message"]) == (200, "overwritten")
    uri = dls.uri("dlsadmin", "f.csv")
    assert dls.download("dlsadmin", uri).content == b"second"
    assert [size for _, size in dls.blobs()] == [6]
    meta = {m["name"]: m["value"] for m in dls.search("dlsadmin", uri=uri).json()["result"][0]
            ["metadata"]}
    assert meta == {"k": "1", "dls:lineage": "OVERWRITE"}


def test_append_adds_to_the_end(dls: Dls) -> None:
    dls.upload("dlsadmin", b"line1\n")
    r = dls.upload("dlsadmin", b"line2\n", mode="append")
    assert (r.status_code, r.json()["message"], r.json()["size-bytes"]) == (200, "appended", 12)
    assert dls.download("dlsadmin", dls.uri("dlsadmin", "f.csv")).content == b"line1\nline2\n"
    assert len(dls.blobs()) == 1
    # APPEND to a file that does not exist creates it.
    assert dls.upload("dlsadmin", b"new", "g.log", mode="APPEND").json()["message"] == "created"


def test_archive_keeps_the_old_version_under_a_time_stamped_name(dls: Dls) -> None:
    dls.upload("dlsadmin", b"v1", "data.csv", directory="d")
    r = dls.upload("dlsadmin", b"v2", "data.csv", directory="d", mode="ARCHIVE")
    assert (r.status_code, r.json()["message"]) == (201, "archived")
    archived = r.json()["archived-to"]
    assert archived.startswith(dls.uri("dlsadmin", "d/data.")) and archived.endswith("Z.csv")
    assert dls.download("dlsadmin", dls.uri("dlsadmin", "d/data.csv")).content == b"v2"
    assert dls.download("dlsadmin", archived).content == b"v1"
    assert len(dls.found("dlsadmin", directory="d")) == 2


@pytest.mark.parametrize(("header", "status", "body", "content_range"), [
    ("bytes=0-3", 206, b"0123", "bytes 0-3/10"),
    ("bytes=7-", 206, b"789", "bytes 7-9/10"),
    ("bytes=-2", 206, b"89", "bytes 8-9/10"),
    ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
    ("bytes=0-1,4-5", 200, b"0123456789", None),  # several ranges: the whole file
])
def test_byte_ranges(dls: Dls, header: str, status: int, body: bytes,
                     content_range: str | None) -> None:
    dls.upload("dlsadmin", b"0123456789", "r.bin")
    r = dls.download("dlsadmin", dls.uri("dlsadmin", "r.bin"), range=header)
    assert (r.status_code, r.content) == (status, body)
    assert r.headers.get("content-range") == content_range


def test_unsatisfiable_range_is_416(dls: Dls) -> None:
    dls.upload("dlsadmin", b"0123456789", "r.bin")
    r = dls.download("dlsadmin", dls.uri("dlsadmin", "r.bin"), range="bytes=10-")
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */10"
    assert r.json()["code"] == 416


def test_delete_one_and_several(dls: Dls) -> None:
    for name in ("a", "b", "c"):
        dls.upload("dlsadmin", b"x", name)
    r = dls.delete("dlsadmin", dls.uri("dlsadmin", "a"))
    assert r.status_code == 207
    assert r.json() == [{"key": "file-uri", "value": dls.uri("dlsadmin", "a"), "code": 200,
                         "messages": ["deleted"]}]
    r = dls.delete("dlsadmin", dls.uri("dlsadmin", "b"), dls.uri("dlsadmin", "nope"))
    assert [i["code"] for i in r.json()] == [200, 404]
    assert dls.found("dlsadmin") == ["c"]
    assert len(dls.blobs()) == 1
    assert dls.download("dlsadmin", dls.uri("dlsadmin", "a")).status_code == 404
    assert dls.delete("dlsadmin", dls.uri("dlsadmin", "a")).status_code == 404


def test_unknown_file_is_404(dls: Dls) -> None:
    r = dls.download("dlsadmin", dls.uri("dlsadmin", "csv/none.csv"))
    assert r.status_code == 404
    assert r.json()["message"].startswith("not.found")


def test_update_metadata_and_comment(dls: Dls) -> None:
    dls.upload("dlsadmin", b"x", metadata="a=1,b=2")
    uri = dls.uri("dlsadmin", "f.csv")
    r = dls.call("PUT", "dlsadmin", "/file/metadata", params={"file-uri": uri},
                 json={"metadata": ["c=3", "a=10"], "remove": ["b"], "comment": "now"})
    assert r.status_code == 200, r.text
    detail = dls.search("dlsadmin", uri=uri).json()["result"][0]
    assert {m["name"]: m["value"] for m in detail["metadata"]} == {
        "a": "10", "c": "3", "dls:lineage": "CREATED"}
    assert detail["comment"] == "now"


def test_explore_lists_subdirectories_and_files(dls: Dls) -> None:
    dls.upload("dlsadmin", b"12", "top.csv")
    dls.upload("dlsadmin", b"123", "a.csv", directory="csv")
    dls.upload("dlsadmin", b"1234", "b.csv", directory="csv", savepoint="sp1")
    dls.upload("dlsadmin", b"12345", "c.csv", directory="csv/2024")
    root = dls.call("GET", "dlsadmin", "/catalog/explore").json()
    assert [f["filename"] for f in root["files"]] == ["top.csv"]
    assert root["directories"] == [{
        "name": "csv", "path": "csv", "parent": "", "file-count": 3, "size-bytes": 12,
        "subdir-count": 1, "created-on": root["directories"][0]["created-on"],
        "created-by": "dlsadmin", "metadata": []}]
    csv = dls.call("GET", "dlsadmin", "/catalog/explore", params={"path": "csv"}).json()
    assert [(f["filename"], f["savepoint"]) for f in csv["files"]] == [
        ("a.csv", ""), ("b.csv", "sp1")]
    assert [d["path"] for d in csv["directories"]] == ["csv/2024"]
    assert csv["record-count"] == 3  # one directory and two files
    r = dls.call("GET", "dlsadmin", "/catalog/explore", params={"path": "nope"})
    assert r.status_code == 404


def test_a_segment_is_a_directory_or_a_savepoint_never_both(dls: Dls) -> None:
    assert dls.upload("dlsadmin", b"1", "f.csv", directory="csv",
                      savepoint="s1").status_code == 201
    r = dls.upload("dlsadmin", b"2", "g.csv", directory="csv/s1")
    assert r.status_code == 409
    assert r.json()["message"].startswith("path.conflict")
    assert dls.upload("dlsadmin", b"3", "h.csv", directory="csv/d2").status_code == 201
    r = dls.upload("dlsadmin", b"4", "i.csv", directory="csv", savepoint="d2")
    assert r.status_code == 409
    assert len(dls.blobs()) == 2
    # The same names in another user's area are another namespace.
    assert dls.upload("bob", b"5", "g.csv", directory="csv/s1").status_code == 201

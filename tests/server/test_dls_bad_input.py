"""Bad input to the DLS: each refused with a clear 4xx, and nothing written."""

from __future__ import annotations

import pytest
from dls_helper import DLS, Dls


@pytest.fixture
def dls(api) -> Dls:
    return Dls(api, "alice")


def _nothing_written(dls: Dls) -> None:
    assert dls.blobs() == []
    assert dls.search("alice").json()["count"] == 0


ESCAPES = ["..", "../x", "/etc/passwd", "a/../../b", "a%2F..%2Fb", "a%2fb", "a\x00b",
           "a\\b", "C:\\Windows", "a%00", "..%2F..", "%2E%2E"]


@pytest.mark.parametrize("name", ESCAPES)
def test_path_escape_in_a_filename_is_400(dls: Dls, name: str) -> None:
    r = dls.upload("alice", b"data", name)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "filename"
    _nothing_written(dls)


@pytest.mark.parametrize("name", ["..", "../x", "//etc", "a/../b", "a/./b", "a%2F..", "a\x00",
                                  "a\\b", "C:/x", "a//b", "x/" * 11])
def test_path_escape_in_a_directory_is_400(dls: Dls, name: str) -> None:
    r = dls.upload("alice", b"data", "f.csv", directory=name)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "directory"
    _nothing_written(dls)


@pytest.mark.parametrize("name", ["..", "a//b", "a/b/", "a/../b", "a/123", "sp%2F..",
                                  "sp\x00", "123", "x" * 51])
def test_path_escape_or_bad_savepoint_is_400(dls: Dls, name: str) -> None:
    r = dls.upload("alice", b"data", "f.csv", savepoint=name)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "savepoint"
    _nothing_written(dls)


@pytest.mark.parametrize("uri", ["/t/alice/f.csv", "t/alice/../f.csv", "t/alice//f.csv",
                                 "t/alice/a%2F..%2Ff.csv", "t/alice/f\x00.csv", "t/alice",
                                 "t\\alice\\f.csv", "C:/alice/f.csv"])
def test_path_escape_in_a_uri_is_400(dls: Dls, uri: str) -> None:
    dls.upload("alice", b"keep", "f.csv")
    for r in (dls.download("alice", uri), dls.delete("alice", uri),
              dls.upload("alice", b"x", None, **{"file-uri": uri, "mode": "OVERWRITE"})):
        assert r.status_code == 400, (uri, r.text)
        assert r.json()["field"] == "file-uri"
    assert [s for _, s in dls.blobs()] == [4]


def test_oversized_upload_is_400_and_nothing_is_kept(make_app) -> None:
    api = make_app(max_upload_bytes=1000)
    dls = Dls(api, "alice")
    r = dls.upload("alice", b"x" * 1001)  # TCUP's 400 upload.filesize.exceeds, not 413
    assert r.status_code == 400
    assert r.json()["key"] == "upload.filesize.exceeds"

    def body():  # no Content-Length: the limit bites while the body streams
        for _ in range(10):
            yield b"y" * 200

    r = api.client.post(f"{DLS}/file", params={"filename": "g"}, content=body(),
                        headers={**api.headers(), **dls.headers("alice")})
    assert r.status_code == 400
    _nothing_written(dls)
    assert not any((api.app.state.settings.data_path / "blobs" / ".tmp").iterdir())


def test_quota_is_409_and_stores_nothing(make_app) -> None:
    api = make_app(dls_quota_bytes=100)
    dls = Dls(api, "alice")
    assert dls.upload("alice", b"x" * 60, "a").status_code == 201
    r = dls.upload("alice", b"x" * 50, "b")
    assert r.status_code == 409
    assert r.json()["message"].startswith("insufficient.storage")

    def body():  # no declared size: refused while streaming
        for _ in range(5):
            yield b"z" * 20

    r = api.client.post(f"{DLS}/file", params={"filename": "c"}, content=body(),
                        headers={**api.headers(), **dls.headers("alice")})
    assert r.status_code == 409
    r = dls.upload("alice", b"x" * 41, "a", mode="APPEND")
    assert r.status_code == 409
    # Overwriting frees the old size first: 60 → 90 fits in 100.
    assert dls.upload("alice", b"x" * 90, "a", mode="OVERWRITE").status_code == 200
    assert dls.found("alice") == ["a"]
    assert [s for _, s in dls.blobs()] == [90]


def test_per_tenant_quota_set_by_the_operator(make_app) -> None:
    from pyconnector_server.auth import tenant_for_key

    api = make_app()
    dls = Dls(api, "alice")
    t = tenant_for_key(api.app.state.db, api.api_key)
    api.app.state.dls.set_quota(t, 5)
    assert dls.upload("alice", b"123456").status_code == 409
    _nothing_written(dls)


@pytest.mark.parametrize(("metadata", "words"), [
    ("novalue", "is not key=value"), ("=v", "key ''"), ("a b=1", "key 'a b'"),
    ("k='unterminated", "unbalanced quote"), ("dls:lineage=x", "belong to the platform"),
    ("k=1,k=2", "given twice"), ("private@=x", "key 'private@'"),
])
def test_malformed_metadata_is_400_naming_the_problem(dls: Dls, metadata: str,
                                                      words: str) -> None:
    r = dls.upload("alice", b"x", metadata=metadata)
    assert r.status_code == 400, r.text
    assert r.json()["field"].startswith("metadata[")
    assert words in r.json()["message"]
    _nothing_written(dls)


def test_bad_mode_is_400(dls: Dls) -> None:
    r = dls.upload("alice", b"x", mode="SOMETIMES")
    assert (r.status_code, r.json()["field"]) == (400, "mode")
    _nothing_written(dls)


@pytest.mark.parametrize(("params", "field", "words"), [
    ({"metadata": "site='pune' &"}, "metadata", "expected a term but found the end"),
    ({"metadata": "(site='pune'"}, "metadata", "expected ')'"),
    ({"metadata": "site='pune"}, "metadata", "unterminated quote"),
    ({"metadata": "site='a' rate=1"}, "metadata", "unexpected 'rate'"),
    ({"metadata": "site>="}, "metadata", "expected a value after '>='"),
    ({"metadata": "site=;"}, "metadata", "unexpected ';'"),
    ({"metadata": ")"}, "metadata", "expected a key or a quoted value"),
    ({"size": ">10zb"}, "size", "not a size expression"),
    ({"size": "big"}, "size", "not a size expression"),
    ({"time": "yesterday"}, "time", "unparseable time"),
    ({"sort": "owner"}, "sort", "must be one of"),
    ({"pageNo": "0"}, "pageNo", "at least 1"),
    ({"pageNo": "99999999999"}, "pageNo", "at most"),  # would overflow OFFSET: 400, not 500
    ({"pageSize": "100000"}, "pageSize", "between 1 and"),
    ({"directory": "../x"}, "directory", "'..'"),
])
def test_malformed_query_is_400_naming_the_problem(dls: Dls, params: dict[str, str],
                                                   field: str, words: str) -> None:
    r = dls.search("alice", **params)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field
    assert words in r.json()["message"], r.json()["message"]


def test_malformed_json_bodies_are_400(dls: Dls) -> None:
    for method, path in (("PUT", "/share"), ("POST", "/relation"), ("PUT", "/file/metadata")):
        r = dls.call(method, "alice", path, params={"file-uri": "t/alice/f"},
                     content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400, (path, r.text)
    r = dls.call("PUT", "alice", "/share", json={"users": ["bob"], "permissions": "X",
                                                   "directory": "d"})
    assert (r.status_code, r.json()["field"]) == (400, "permissions")
    r = dls.call("POST", "alice", "/relation", json={"source": "t/alice/a",
                                                       "target": "t/alice/b",
                                                       "relation": "no spaces"})
    assert (r.status_code, r.json()["field"]) == (400, "relation")

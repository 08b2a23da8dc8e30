"""The Data Lake's errors in TCUP's words (tcup-api.md §3.2, §3.3, §1.1): every DLS error
carries TCUP's message key in the one error shape, with TCUP's statuses where it documents
them; a 400 in TCUP's list-of-messages form on request; ``GET /admin/storage/type``;
the OpenAPI document at ``<service base>/v2/api-docs``. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from dls_helper import DLS, Dls

import pyconnector
from pyconnector_server.auth import create_api_key

SOS = "/api/sos/v2.0"
SHAPE = {"code", "message", "field", "line", "key"}
TCUP = {"x-error-format": "tcup"}


def _check(label: str, r: Any, status: int, key: str, field: str | None = None) -> None:
    assert r.status_code == status, (label, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), label
    body = r.json()
    assert isinstance(body, dict) and {"code", "message", "key"} <= set(body) <= SHAPE, (
        label, body)
    assert body["code"] == status and body["key"] == key, (label, body)
    # The message stays a sentence for people, not the bare key.
    assert body["message"] != key and " " in body["message"].strip(), (label, body)
    if field is not None:
        assert body.get("field") == field, (label, body)


@pytest.fixture
def lake(make_app: Any, db_url: str) -> Dls:
    api = make_app(db_url, max_upload_bytes=1000, max_body_bytes=2000, dls_quota_bytes=800)
    return Dls(api, "alice", "bob")


def test_every_dls_error_carries_its_tcup_key(lake: Dls) -> None:
    api, c = lake.api, lake.api.client
    assert lake.upload("alice", b"report", "r.csv", directory="reports").status_code == 201
    uri = lake.uri("alice", "reports/r.csv")
    app_key = create_api_key(api.app.state.db, lake.tenant, role="app")
    r = api.put(f"{DLS}/share", json={"file-uri": uri, "users": ["bob"], "permissions": "R"},
                headers=lake.headers("alice"))
    assert r.status_code == 207, r.text
    relation = {"source": uri, "target": uri, "relation": "self"}
    cases: list[tuple[str, Any, int, str, str | None]] = [
        # Authentication (§3.2): no or an unknown API key 401, no DLS key 403, unknown 401.
        ("no api key", c.get(f"{DLS}/catalog"), 401, "not.authenticated", None),
        ("unknown api key", c.get(f"{DLS}/catalog", headers={"x-api-key": "f" * 64}),
         401, "not.authenticated", None),
        ("no dls key", c.get(f"{DLS}/catalog", headers={"x-api-key": app_key}),
         403, "not.authorized", None),
        ("unknown dls key", c.get(f"{DLS}/catalog", headers={"x-api-key": app_key,
                                                              "x-dls-key": "0" * 64}),
         401, "not.authenticated", None),
        ("admin route, app key", c.get(f"{DLS}/admin/users", headers={
            "x-api-key": app_key, **lake.headers("alice")}), 403, "not.authorized", None),
        # Not found: files, routes.
        ("no such file", lake.download("alice", lake.uri("alice", "nope.csv")),
         404, "not.found", "file-uri"),
        ("no such relation", api.delete(f"{DLS}/relation", params={
            "source": uri, "target": uri}, headers=lake.headers("alice")),
         404, "not.found", "relation"),
        ("unknown route", api.get(f"{DLS}/nope", headers=lake.headers("alice")),
         404, "not.found", None),
        ("405", api.client.patch(f"{DLS}/file", headers=api.headers(**lake.headers("alice"))),
         405, "method.not.allowed", None),
        # Clashes and privileges: 409 (TCUP's status for no.write.privilege).
        ("exists", lake.upload("alice", b"again", "r.csv", directory="reports"),
         409, "already.exists", None),
        ("user exists", api.post(f"{DLS}/admin/users", json={"user": "bob"}),
         409, "already.exists", "user"),
        ("write, read-only share", lake.upload("bob", b"evil", None, **{
            "file-uri": uri, "mode": "OVERWRITE"}), 409, "no.write.privilege", "file-uri"),
        ("delete, read-only share", lake.delete("bob", uri),
         409, "no.delete.privilege", "file-uri"),
        ("metadata, read-only share", api.put(f"{DLS}/file/metadata", params={"file-uri": uri},
                                              json={"metadata": ["a=1"]},
                                              headers=lake.headers("bob")),
         409, "no.write.privilege", "file-uri"),
        ("quota", lake.upload("alice", b"q" * 900, "big.csv"), 409, "insufficient.storage",
         None),
        ("user has files", api.delete(f"{DLS}/admin/users/alice"), 409, "user.has.files",
         "user"),
        ("share, not owner", api.put(f"{DLS}/share", json={"file-uri": uri, "users": ["bob"]},
                                     headers=lake.headers("bob")), 403, "not.owner", None),
        # Bad parameters: invalid.argument; a body that cannot be taken: invalid.input.
        ("bad savepoint", lake.upload("alice", b"x", "s.csv", savepoint="a*b"),
         400, "invalid.argument", "savepoint"),
        ("bad sort", lake.search("alice", sort="colour"), 400, "invalid.argument", "sort"),
        ("bad pageNo", api.get(f"{DLS}/catalog/explore", params={"pageNo": "x"},
                               headers=lake.headers("alice")), 400, "invalid.argument",
         "pageNo"),
        ("range", lake.download("alice", uri, range="bytes=100-"), 416, "invalid.argument",
         None),
        ("malformed json", api.put(f"{DLS}/file/metadata", params={"file-uri": uri},
                                   content=b"{", headers={**lake.headers("alice"),
                                                          "content-type": "application/json"}),
         400, "invalid.input", None),
        ("body field", api.post(f"{DLS}/admin/users", json={"user": 5}),
         400, "invalid.input", "user"),
        ("self relation", api.post(f"{DLS}/relation", json=relation,
                                   headers=lake.headers("alice")), 400, "invalid.input",
         "target"),
        ("json body too large", api.put(f"{DLS}/file/metadata", params={"file-uri": uri},
                                        json={"comment": "c" * 3000},
                                        headers=lake.headers("alice")), 413, "invalid.input",
         None),
    ]
    seen = set()
    for label, r, status, key, field in cases:
        assert label not in seen
        seen.add(label)
        _check(label, r, status, key, field)
    # Nothing was changed by the refused writes.
    assert lake.download("alice", uri).content == b"report"
    # Other services keep the plain shape: no key.
    r = api.get(f"{SOS}/features/nope")
    assert r.status_code == 404 and "key" not in r.json()


def test_an_oversized_upload_is_400_upload_filesize_exceeds(lake: Dls) -> None:
    api = lake.api
    r = lake.upload("alice", b"x" * 1001, "big.csv")  # refused by its Content-Length
    _check("content-length", r, 400, "upload.filesize.exceeds")
    assert "1000 bytes" in r.json()["message"]

    def body():  # no Content-Length: refused as it streams
        for _ in range(10):
            yield b"y" * 200

    r = api.client.post(f"{DLS}/file", params={"filename": "g"}, content=body(),
                        headers={**api.headers(), **lake.headers("alice")})
    _check("streamed", r, 400, "upload.filesize.exceeds")
    assert "1000 bytes" in r.json()["message"]
    r = api.client.put(f"{DLS}/file/resumable", params={"file-uri": lake.uri("alice", "g")},
                       content=b"z" * 1001, headers={**api.headers(), **lake.headers("alice")})
    _check("resumable chunk", r, 400, "upload.filesize.exceeds")
    assert lake.blobs() == [] and lake.search("alice").json()["count"] == 0
    # An SOS body over the same limit keeps the platform's 413, without a key.
    r = api.post(f"{SOS}/observations/csv", content=b"t" * 1001,
                 headers={"content-type": "text/csv"})
    assert r.status_code == 413 and "key" not in r.json()


def test_a_400_in_tcup_list_form_when_asked(lake: Dls) -> None:
    api = lake.api
    r = api.get(f"{DLS}/catalog/explore", params={"pageNo": "x"},
                headers={**lake.headers("alice"), **TCUP})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
    [item] = r.json()
    assert item["key"] == "page-no" and item["value"] == "x"
    assert set(item) == {"key", "value", "messages"} and len(item["messages"]) == 1
    assert item["messages"][0].strip() and not item["messages"][0].startswith("pageNo")
    r = lake.upload("alice", b"x", "s.csv", savepoint="a*b", **{})
    assert r.status_code == 400 and isinstance(r.json(), dict)  # not asked: the one shape
    r = api.post(f"{DLS}/file", params={"filename": "s.csv", "savepoint": "a*b"},
                 content=b"x", headers={**lake.headers("alice"), **TCUP})
    assert r.json() == [{"key": "savepoint", "value": "a*b",
                         "messages": [r.json()[0]["messages"][0]]}]
    assert not r.json()[0]["messages"][0].startswith("savepoint:")
    # No field: a list of messages alone.
    r = api.put(f"{DLS}/file/metadata", params={"file-uri": lake.uri("alice", "a")},
                content=b"{", headers={**lake.headers("alice"), **TCUP,
                                       "content-type": "application/json"})
    assert r.status_code == 400
    [item] = r.json()
    assert set(item) == {"messages"} and "JSON" in item["messages"][0]
    # A field named by the body may be any text, never taken for a header (fuzz: was 500).
    uri = lake.uri("alice", "a")
    strange = {"m\U0005fe0e": [1]}
    r = api.put(f"{DLS}/file/metadata", params={"file-uri": uri}, json=strange,
                headers=lake.headers("alice"))
    _check("strange field", r, 400, "invalid.input", "m\U0005fe0e")
    r = api.put(f"{DLS}/file/metadata", params={"file-uri": uri}, json=strange,
                headers={**lake.headers("alice"), **TCUP})
    assert r.status_code == 400 and r.json()[0]["key"] == "m\U0005fe0e", r.text
    assert "value" not in r.json()[0]
    # Other statuses keep the one shape, with their key.
    r = lake.download("alice", lake.uri("alice", "nope.csv"), **TCUP)
    _check("404 asked for tcup", r, 404, "not.found", "file-uri")
    # The header is the DLS's: SOS answers the one shape.
    r = api.get(f"{SOS}/features", params={"limit": "abc"}, headers=TCUP)
    assert r.status_code == 400 and r.json()["field"] == "limit"


def test_storage_type(make_app: Any, db_url: str, tmp_path: Any) -> None:
    api = make_app(db_url)
    r = api.get(f"{DLS}/admin/storage/type")
    assert r.status_code == 200, r.text
    blobs = api.app.state.dls.blobs
    assert r.json() == {"type": "LOCAL", "value": str(blobs.root)}
    dls = Dls(api, "alice")
    app_key = create_api_key(api.app.state.db, dls._tenant_name(), role="app")
    r = api.client.get(f"{DLS}/admin/storage/type",
                       headers={"x-api-key": app_key, **dls.headers("alice")})
    _check("not admin", r, 403, "not.authorized")
    mem = make_app(db_url, blobs="memory://")
    assert mem.get(f"{DLS}/admin/storage/type").json() == {"type": "MEMORY",
                                                           "value": "memory://"}


def test_storage_type_of_s3_names_the_bucket_alone() -> None:
    pytest.importorskip("s3fs")
    from pyconnector_server.backends.blobs.s3 import S3BlobStore
    from pyconnector_server.datalake.store import DatalakeStore

    blobs = S3BlobStore("s3://lake/pre/fix", endpoint_url="http://user:secret@s3:9000")
    store = DatalakeStore(None, blobs)  # type: ignore[arg-type]  # no database needed
    assert store.storage_type() == {"type": "S3", "value": "s3://lake/pre/fix"}


@pytest.mark.parametrize("base", [SOS, DLS])
def test_api_docs_where_tcup_serves_them(make_app: Any, db_url: str, base: str) -> None:
    api = make_app(db_url)
    r = api.get(f"{base}/v2/api-docs")
    assert r.status_code == 200, r.text
    published = api.client.get("/openapi.json").json()
    assert r.json() == published
    assert r.json()["info"]["version"] == pyconnector.__version__
    assert f"{base}/v2/api-docs" not in published["paths"]
    for headers in ({}, {"x-api-key": "f" * 64}):
        r = api.client.get(f"{base}/v2/api-docs", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == 401
    assert (r.json().get("key") == "not.authenticated") == (base == DLS)


def test_a_key_written_in_the_message_is_the_key() -> None:
    from starlette.requests import Request

    from pyconnector_server.datalake.tcup_errors import dialect
    from pyconnector_server.errors import APIError

    answer = dialect(DLS)
    request = Request({"type": "http", "method": "PUT", "path": f"{DLS}/file/resumable",
                       "query_string": b"", "headers": []})
    r = answer(request, APIError(409, "offset.mismatch: the upload has 5 bytes stored"))
    assert r.status_code == 409 and b'"key":"offset.mismatch"' in r.body
    r = answer(request, APIError(409, "the file kept changing: try again"))
    assert b'"key":"already.exists"' in r.body  # no key in the message: the status's
    r = answer(request, APIError(400, "a.b: unknown field", field="a.b"))
    assert b'"key":"invalid.input"' in r.body  # a field, not a key

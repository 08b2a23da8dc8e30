"""DLS uploads under attack, on SQLite and PostgreSQL: TCUP's multipart form (never the
envelope), a SHA-256 of every file through every mode, APPEND without blob I/O inside a
transaction, and every input checked against every column limit before the database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from dls_helper import DLS, Dls

from pyconnector_server.datalake.validate import MAX_PRIVATE_KEY

BOUNDARY = "x-pyc-b0undary"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def form(*parts: tuple[str, str | None, str | None, bytes], close: bool = True) -> bytes:
    """A multipart/form-data body of ``(name, filename, content type, content)`` parts."""
    out = []
    for name, filename, ctype, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        out.append(head.encode() + b"\r\n" + content + b"\r\n")
    if close:
        out.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(out)


def post_form(dls: Dls, user: str, body: bytes | Iterator[bytes], **params: Any):
    return dls.call("POST", user, "/file", params=params, content=body,
                    headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})


@pytest.fixture
def dls(api_any) -> Dls:
    return Dls(api_any, "alice", "bob")


def info(dls: Dls, user: str, uri: str) -> dict[str, Any]:
    r = dls.search(user, uri=uri)
    assert r.status_code == 200, r.text
    (found,) = r.json()["result"]
    return found


def assert_hash(dls: Dls, user: str, uri: str, answer: dict[str, Any], sent: bytes) -> None:
    """What was sent == what the server reports (answer, file info) == what comes back."""
    got = dls.download(user, uri)
    assert got.status_code == 200
    assert got.content == sent
    assert answer["sha256"] == sha(sent) == info(dls, user, uri)["sha256"] == sha(got.content)


# -- item 9: TCUP's multipart form -------------------------------------------------------------
def test_multipart_form_stores_the_file_its_comment_and_metadata(dls: Dls) -> None:
    content = b"8 bytes!"
    body = form(("file", "data.bin", "application/x-thing", content),
                ("comment", None, None, b"from the form"),
                ("metadata", None, None, b"site=pune,rate=5"),
                ("metadata", None, None, b"private@note='a, b'"))
    r = post_form(dls, "alice", body, directory="in")
    assert r.status_code == 201, r.text
    uri = dls.uri("alice", "in/data.bin")
    assert r.json()["uri"] == uri and r.json()["size-bytes"] == 8  # not the 400-byte envelope
    assert_hash(dls, "alice", uri, r.json(), content)
    got = info(dls, "alice", uri)
    assert got["comment"] == "from the form"
    assert got["content-type"] == "application/x-thing"
    assert {m["name"]: m["value"] for m in got["metadata"]} == {
        "site": "pune", "rate": "5", "private@note": "a, b", "dls:lineage": "CREATED"}
    assert [s for _, s in dls.blobs()] == [8]


def test_multipart_query_parameters_work_alongside_the_form(dls: Dls) -> None:
    body = form(("metadata", None, None, b"b=2"), ("file", "ignored.txt", None, b"x,y\n"))
    r = post_form(dls, "alice", body, filename="named.csv", metadata="a=1", savepoint="v1")
    assert r.status_code == 201, r.text
    uri = dls.uri("alice", "v1/named.csv")
    got = info(dls, "alice", uri)
    assert got["content-type"].startswith("text/csv")  # guessed from the query's name
    assert {m["name"]: m["value"] for m in got["metadata"]} == {
        "a": "1", "b": "2", "dls:lineage": "CREATED"}
    assert dls.download("alice", uri).content == b"x,y\n"
    r = post_form(dls, "alice", form(("file", None, None, b"more\n")),
                  **{"file-uri": uri, "mode": "APPEND", "comment": "q"})
    assert r.status_code == 200, r.text
    assert_hash(dls, "alice", uri, r.json(), b"x,y\nmore\n")
    assert info(dls, "alice", uri)["comment"] == "q"


@pytest.mark.parametrize(("body", "params", "field"), [
    (form(("comment", None, None, b"no file")), {}, "file"),
    (form(("file", None, None, b"no name")), {}, "filename"),
    (form(("file", "a.txt", None, b"1"), ("file", "b.txt", None, b"2")), {}, "file"),
    (form(("file", "a.txt", None, b"1"), ("owner", None, None, b"bob")), {}, "body"),
    (form(("file", "a.txt", None, b"cut off"), close=False), {}, "body"),
    (b"--" + BOUNDARY.encode() + b"\r\nno headers here", {}, "body"),
    (form(("file", "a.txt", None, b"1"), ("metadata", None, None, b"novalue")), {},
     "metadata[0]"),
    (form(("file", "a.txt", None, b"1"), ("metadata", None, None, b"k=1")), {"metadata": "k=2"},
     "metadata[1]"),
    (form(("file", "a.txt", None, b"1"), ("comment", None, None, b"c")), {"comment": "q"},
     "comment"),
    (form(("file", "a.txt", None, b"1"), ("comment", None, None, b"\xff\xfe")), {}, "comment"),
    (form(("file", "../a.txt", None, b"1")), {}, "file"),
    (form(("file", "a.txt", "not a type", b"1")), {}, "file"),
])
def test_a_bad_form_is_400_and_stores_nothing(dls: Dls, body: bytes, params: dict[str, str],
                                              field: str) -> None:
    r = post_form(dls, "alice", body, **params)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field, r.json()
    assert dls.blobs() == []
    assert dls.search("alice").json()["count"] == 0


def test_a_form_without_a_boundary_is_400(dls: Dls) -> None:
    r = dls.call("POST", "alice", "/file", params={"filename": "f"}, content=b"x",
                 headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and r.json()["field"] == "content-type", r.text
    assert dls.blobs() == []


def test_other_content_types_keep_the_raw_body(dls: Dls) -> None:
    raw = form(("file", "a.txt", None, b"inner"))
    r = dls.call("POST", "alice", "/file", params={"filename": "m.eml"}, content=raw,
                 headers={"content-type": f"multipart/mixed; boundary={BOUNDARY}"})
    assert r.status_code == 201, r.text
    uri = dls.uri("alice", "m.eml")
    assert_hash(dls, "alice", uri, r.json(), raw)
    assert info(dls, "alice", uri)["content-type"] == "multipart/mixed"


def test_the_form_streams_to_the_blob_store_in_blocks(dls: Dls) -> None:
    """A 24 MiB file part reaches the blob store a block (about 1 MiB) at a time while the
    body streams: the server never holds the file whole."""
    part = bytes(range(256)) * 4096  # 1 MiB
    head, tail = form(("file", "big.bin", None, b"\x00")).split(b"\x00")
    writes: list[int] = []
    real = dls.api.app.state.dls.blobs.writer

    def spying_writer(key: str):
        w = real(key)
        write = w.write
        w.write = lambda data: (writes.append(len(data)), write(data))[1]
        return w

    dls.api.app.state.dls.blobs.writer = spying_writer

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(24):
            for i in range(0, len(part), 64 << 10):  # as a server's socket reads
                yield part[i:i + (64 << 10)]
        yield tail

    async def send() -> httpx.Response:
        # httpx's ASGI transport hands the app the body chunk by chunk, as a server does
        # (the TestClient joins it first).
        transport = httpx.ASGITransport(app=dls.api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(
                f"{DLS}/file", content=body(), headers={
                    **dls.api.headers(), **dls.headers("alice"),
                    "content-type": f"multipart/form-data; boundary={BOUNDARY}"})

    r = asyncio.run(send())
    assert r.status_code == 201, r.text
    assert sum(writes) == 24 << 20 and len(writes) >= 20 and max(writes) < 2 << 20, writes
    assert_hash(dls, "alice", dls.uri("alice", "big.bin"), r.json(), part * 24)


# -- item 9: SHA-256 through every mode ---------------------------------------------------------
def test_sha256_through_every_mode(dls: Dls) -> None:
    uri = dls.uri("alice", "d/f.bin")
    r = dls.upload("alice", b"first", "f.bin", directory="d")
    assert r.status_code == 201
    assert_hash(dls, "alice", uri, r.json(), b"first")
    r = dls.upload("alice", b"second version", "f.bin", directory="d", mode="OVERWRITE")
    assert r.status_code == 200
    assert_hash(dls, "alice", uri, r.json(), b"second version")
    r = dls.upload("alice", b"+appended", "f.bin", directory="d", mode="APPEND")
    assert r.status_code == 200
    assert_hash(dls, "alice", uri, r.json(), b"second version+appended")
    r = dls.upload("alice", b"third", "f.bin", directory="d", mode="ARCHIVE")
    assert r.status_code == 201
    assert_hash(dls, "alice", uri, r.json(), b"third")
    old = r.json()["archived-to"]
    assert info(dls, "alice", old)["sha256"] == sha(b"second version+appended")
    assert dls.download("alice", old).content == b"second version+appended"
    # An APPEND to a file that is not there yet creates it.
    r = dls.upload("alice", b"new", "g.bin", mode="APPEND")
    assert r.status_code == 201
    assert_hash(dls, "alice", dls.uri("alice", "g.bin"), r.json(), b"new")
    # Only the catalog's blobs are left: the APPEND's parts and the replaced ones are gone.
    assert sorted(s for _, s in dls.blobs()) == sorted([5 + 18, 3, 3 + 2])


# -- item 10: APPEND outside the transaction -------------------------------------------------
def test_an_append_retries_when_the_file_changes_meanwhile(dls: Dls) -> None:
    uri = dls.uri("alice", "log.txt")
    dls.upload("alice", b"one\n", "log.txt")
    s = dls.api.app.state.dls
    real = s._combine
    calls = []

    def combine_then_someone_overwrites(t, base, upload_key):
        out = real(t, base, upload_key)
        if not calls:  # another writer replaces the file while this append was copying
            r = dls.upload("bob", b"", "x")  # (bob is busy elsewhere: no conflict there)
            assert r.status_code == 201
            r = dls.upload("alice", b"ONE\n", "log.txt", mode="OVERWRITE")
            assert r.status_code == 200, r.text
        calls.append(out)
        return out

    s._combine = combine_then_someone_overwrites
    r = dls.upload("alice", b"two\n", "log.txt", mode="APPEND")
    assert r.status_code == 200, r.text
    assert len(calls) == 2  # the first combination was stale
    assert_hash(dls, "alice", uri, r.json(), b"ONE\ntwo\n")
    keys = {k for k, _ in dls.blobs()}
    assert calls[0].key not in keys and calls[1].key in keys
    assert len(keys) == 2  # log.txt and bob's x: no stale combination, upload or old blob


def test_an_append_to_a_file_that_keeps_changing_is_409_and_leaves_nothing(dls: Dls) -> None:
    dls.upload("alice", b"base", "busy.txt")
    s = dls.api.app.state.dls
    real = s._combine
    n = iter(range(100))

    def always_overwritten(t, base, upload_key):
        out = real(t, base, upload_key)
        r = dls.upload("alice", f"v{next(n)}".encode(), "busy.txt", mode="OVERWRITE")
        assert r.status_code == 200
        return out

    s._combine = always_overwritten
    r = dls.upload("alice", b"+tail", "busy.txt", mode="APPEND")
    assert r.status_code == 409, r.text
    assert r.json()["message"].startswith("file.changed")
    s._combine = real
    assert [sz for _, sz in dls.blobs()] == [2]  # only the last overwrite's v2
    assert dls.download("alice", dls.uri("alice", "busy.txt")).content == b"v2"


def _slow_reads(store: Any, seconds_per_mib: float) -> Callable[[], None]:
    """Make the blob store read like a slow disk or a remote store; returns the undo."""
    real = store.read

    def slow(key: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20):
        def chunks() -> Iterator[bytes]:
            for chunk in real(key, start, end, chunk_size):
                time.sleep(seconds_per_mib * len(chunk) / (1 << 20))
                yield chunk
        return chunks()

    store.read = slow

    def undo() -> None:
        store.read = real
    return undo


def test_a_large_append_does_not_hold_up_small_writes(dls: Dls) -> None:
    """A 24 MiB APPEND to an 8 MiB file, on a blob store that reads at 4 MiB/s: small
    writes of another thread (uploads, which take the tenant's quota lock, and metadata
    updates) all succeed and none waits for the append."""
    base, extra = b"b" * (8 << 20), b"e" * (24 << 20)
    uri = dls.uri("alice", "big.log")
    assert dls.upload("alice", base, "big.log").status_code == 201
    assert dls.upload("bob", b"1", "small.txt").status_code == 201
    small_uri = dls.uri("bob", "small.txt")
    undo = _slow_reads(dls.api.app.state.dls.blobs, 0.25)
    result: dict[str, Any] = {}
    started = threading.Event()

    def big_append() -> None:
        started.set()
        t0 = time.monotonic()
        result["append"] = dls.upload("alice", extra, "big.log", mode="APPEND")
        result["append_s"] = time.monotonic() - t0

    worker = threading.Thread(target=big_append)
    worker.start()
    started.wait()
    latencies, errors = [], []
    i = 0
    while worker.is_alive() or i < 20:
        t0 = time.monotonic()
        if i % 2:
            r = dls.call("PUT", "bob", "/file/metadata", params={"file-uri": small_uri},
                         json={"metadata": [f"n={i}"]})
        else:
            r = dls.upload("bob", b"small", f"s{i}.txt")
        latencies.append(time.monotonic() - t0)
        if r.status_code >= 300:
            errors.append(r.text)
        i += 1
        time.sleep(0.05)
    worker.join()
    undo()
    assert errors == []
    assert result["append"].status_code == 200, result["append"].text
    assert result["append_s"] > 6  # the append was slow: the small writes overlapped it
    print(f"\nsmall writes during a {result['append_s']:.1f} s APPEND: {len(latencies)}, "
          f"max latency {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 5, latencies
    assert_hash(dls, "alice", uri, result["append"].json(), base + extra)


# -- item 6: every input against every limit of both stores --------------------------------
def _dir(n: int) -> str:
    """A directory of ``n`` characters in segments of at most 63."""
    segs, left = [], n
    while left > 0:
        take = min(63, left if left <= 63 else min(63, left - 2))
        segs.append("d" * take)
        left -= take + 1
    text = "/".join(segs)
    assert len(text) == n, (n, len(text))
    return text


def _ctype(n: int) -> str:
    return "a" * 127 + "/" + "b" * (n - 128)


class Case:
    """One input field: how to send a value, its limit, and how a value of n chars looks."""

    def __init__(self, name: str, limit: int, make: Callable[[int], str],
                 send: Callable[[Dls, str], Any], field: str, nul: bool = True,
                 json: bool = False) -> None:
        self.name, self.limit, self.make, self.send = name, limit, make, send
        self.field, self.nul, self.json = field, nul, json
        self.uploads = send.__qualname__.split(".")[0] in ("_upload", "_form_part",
                                                            "_raw_ctype")


def _upload(**params: Any) -> Callable[[Dls, str], Any]:
    def send(dls: Dls, value: str) -> Any:
        return dls.upload("alice", b"data", **{k: (value if p is None else p.format(value))
                                               for k, p in params.items()})
    return send


def _form_part(part: str, fmt: str = "{}") -> Callable[[Dls, str], Any]:
    def send(dls: Dls, value: str) -> Any:
        if part == "file":
            return post_form(dls, "alice", form(("file", value, None, b"data")))
        return post_form(dls, "alice", form(("file", "f.txt", None, b"data"),
                                            (part, None, None, fmt.format(value).encode())))
    return send


def _json(dls: Dls, method: str, path: str, body: Any, **kw: Any) -> Any:
    """A JSON body sent as ASCII text: a lone surrogate travels as its escape."""
    return dls.call(method, "alice", path, content=json.dumps(body),
                    headers={"content-type": "application/json"}, **kw)


def _put_meta(key: str, fmt: str) -> Callable[[Dls, str], Any]:
    def send(dls: Dls, value: str) -> Any:
        uri = dls.uri("alice", "m.txt")
        if dls.download("alice", uri).status_code == 404:
            assert dls.upload("alice", b"m", "m.txt").status_code == 201
        item = fmt.format(value)
        return _json(dls, "PUT", "/file/metadata", {key: item if key == "comment" else [item]},
                     params={"file-uri": uri})
    return send


def _relation(dls: Dls, value: str) -> Any:
    for name in ("src.txt", "dst.txt"):
        if dls.download("alice", dls.uri("alice", name)).status_code == 404:
            dls.upload("alice", b"r", name)
    return _json(dls, "POST", "/relation", {
        "source": dls.uri("alice", "src.txt"), "target": dls.uri("alice", "dst.txt"),
        "relation": value})


def _get_relation(dls: Dls, value: str) -> Any:
    return dls.call("GET", "alice", "/relation", params={"relation": value})


def _share_user(dls: Dls, value: str) -> Any:
    if value == "u" * len(value) and len(value) <= 64:
        dls.add_user(value)
    return _json(dls, "PUT", "/share", {"directory": "", "users": [value]})


def _share_dir(dls: Dls, value: str) -> Any:
    return _json(dls, "PUT", "/share", {"directory": value, "users": ["bob"]})


def _raw_ctype(dls: Dls, value: str) -> Any:
    return dls.call("POST", "alice", "/file", params={"filename": "c.bin"}, content=b"d",
                    headers={"content-type": value})


CASES = [
    Case("upload filename", 255, lambda n: "f" * n, _upload(filename=None), "filename"),
    Case("upload directory", 255, _dir, _upload(filename="f.txt", directory=None),
         "directory"),
    Case("upload savepoint", 50, lambda n: "s" * n, _upload(filename="f.txt", savepoint=None),
         "savepoint"),
    Case("upload comment", 255, lambda n: "c" * n, _upload(filename="f.txt", comment=None),
         "comment"),
    Case("upload metadata value", 1024, lambda n: "v" * n,
         _upload(filename="f.txt", metadata="k={}"), "metadata[0]"),
    Case("upload metadata key", 255, lambda n: "k" * n,
         _upload(filename="f.txt", metadata="{}=v"), "metadata[0]"),
    Case("upload private metadata key", MAX_PRIVATE_KEY, lambda n: "k" * n,
         _upload(filename="f.txt", metadata="private@{}=v"), "metadata[0]"),
    Case("upload content-type", 255, _ctype, _raw_ctype, "content-type", nul=False),
    Case("form file name", 255, lambda n: "f" * n, _form_part("file"), "file"),
    Case("form comment", 255, lambda n: "c" * n, _form_part("comment"), "comment"),
    Case("form metadata value", 1024, lambda n: "v" * n, _form_part("metadata", "k={}"),
         "metadata[0]"),
    Case("form private metadata key", MAX_PRIVATE_KEY, lambda n: "k" * n,
         _form_part("metadata", "private@{}=v"), "metadata[0]"),
    Case("metadata value", 1024, lambda n: "v" * n, _put_meta("metadata", "k={}"),
         "metadata[0]", json=True),
    Case("metadata key", 255, lambda n: "k" * n, _put_meta("metadata", "{}=v"), "metadata[0]",
         json=True),
    Case("private metadata key", MAX_PRIVATE_KEY, lambda n: "k" * n,
         _put_meta("metadata", "private@{}=v"), "metadata[0]", json=True),
    Case("removed private key", MAX_PRIVATE_KEY, lambda n: "k" * n,
         _put_meta("remove", "private@{}"), "remove[0]", json=True),
    Case("metadata comment", 255, lambda n: "c" * n, _put_meta("comment", "{}"), "comment",
         json=True),
    Case("relation name", 64, lambda n: "r" * n, _relation, "relation", json=True),
    Case("relation name (query)", 64, lambda n: "r" * n, _get_relation, "relation"),
    Case("share user", 64, lambda n: "u" * n, _share_user, "users[0]", json=True),
    Case("share directory", 255, _dir, _share_dir, "directory", json=True),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               app_opener: Callable[..., Any]) -> Iterator[Any]:
    """One app per store for the limit cases (each case has a tenant of its own)."""
    db = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with app_opener(tmp_path_factory.mktemp("limits"), db) as api:
        yield api


@pytest.fixture
def fresh(shared_api: Any) -> Dls:
    shared_api.api_key = shared_api.new_key(f"t-{uuid.uuid4().hex[:8]}")
    return Dls(shared_api, "alice", "bob")


def _variants(case: Case) -> list[str]:
    out = ["at the limit", "one past the limit"]
    if case.nul:
        out.append("NUL")
    if case.json:
        out.append("lone surrogate")
    return out


@pytest.mark.parametrize(("case", "variant"), [
    pytest.param(c, v, id=f"{c.name}-{v}") for c in CASES for v in _variants(c)])
def test_every_input_is_checked_against_its_column_before_the_database(
        fresh: Dls, case: Case, variant: str) -> None:
    at_limit = case.make(case.limit)
    assert len(at_limit) == case.limit
    value = {"at the limit": at_limit, "one past the limit": case.make(case.limit + 1),
             "NUL": at_limit[:5] + "\x00" + at_limit[6:],
             "lone surrogate": at_limit[:5] + "\ud800" + at_limit[6:]}[variant]
    before = fresh.blobs()
    r = case.send(fresh, value)
    assert r.status_code < 500, r.text
    if variant == "at the limit":
        assert r.status_code < 300, r.text
        if r.status_code == 207:
            assert all(item["code"] < 300 for item in r.json()), r.text
        return
    assert r.status_code == 400, r.text
    if variant != "lone surrogate":  # (the JSON parser refuses it: "malformed JSON")
        assert r.json()["field"] == case.field, r.json()
    if case.uploads:
        assert fresh.blobs() == before  # a refused upload stores nothing


def test_a_private_key_at_its_limit_is_stored_whole_for_any_user_id(fresh: Dls) -> None:
    """The stored key is ``<user id>@<name>``: the limit leaves room for the longest id."""
    name = "k" * MAX_PRIVATE_KEY
    assert len(f"{2**31 - 1}@{name}") == 255
    r = fresh.upload("alice", b"d", "p.txt", metadata=f"private@{name}=v")
    assert r.status_code == 201, r.text
    got = info(fresh, "alice", fresh.uri("alice", "p.txt"))["metadata"]
    assert {"name": f"private@{name}", "value": "v", "privacy": "private"} in got

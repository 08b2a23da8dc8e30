"""One contract for every blob store: local directory, memory, and S3 (moto's server on
loopback)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyconnector_server.backends.blobs import BlobStore, open_blob_store


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        s = open_blob_store("", tmp_path / "blobs")
    elif request.param == "memory":
        s = open_blob_store("memory://", tmp_path / "unused")
    else:
        s = open_blob_store(request.getfixturevalue("s3_url"), tmp_path,
                            request.getfixturevalue("s3_endpoint"))
    yield s
    s.close()


def test_put_then_get_size_exists_list(store: BlobStore) -> None:
    assert store.put("t1/a", b"hello") == 5
    assert store.get("t1/a") == b"hello"
    assert store.size("t1/a") == 5
    assert store.exists("t1/a") and not store.exists("t1/b")
    assert store.size("t1/b") is None
    store.put("t1/sub/b", [b"wor", b"ld"])
    store.put("t2/c", b"")
    assert list(store.list()) == [("t1/a", 5), ("t1/sub/b", 5), ("t2/c", 0)]
    assert list(store.list("t1/")) == [("t1/a", 5), ("t1/sub/b", 5)]
    assert list(store.list("t1/sub/")) == [("t1/sub/b", 5)]
    assert list(store.list("t3/")) == []


def test_list_with_age_says_when_each_blob_was_written(store: BlobStore) -> None:
    before = time.time()
    store.put("t1/b", b"hello")
    store.put("t1/a", b"")
    store.put("t2/c", b"xyz")
    found = list(store.list_with_age())
    assert [(b.key, b.size) for b in found] == [("t1/a", 0), ("t1/b", 5), ("t2/c", 3)]
    assert [(b.key, b.size) for b in found] == list(store.list())
    for b in found:  # S3 keeps whole seconds; a loopback server shares our clock
        assert before - 2 <= b.modified <= time.time() + 2, b
    assert [b.key for b in store.list_with_age("t2/")] == ["t2/c"]


@pytest.mark.parametrize("size", [1000, 20 << 20])  # small, and past the S3 multipart size
def test_sweep_unfinished_drops_an_interrupted_write_once_old_enough(
        store: BlobStore, size: int) -> None:
    store.put("t1/kept", b"committed")
    w = store.writer("t1/cut")
    for _ in range(max(1, size >> 20)):
        w.write(b"z" * min(size, 1 << 20))
    # A server killed now never commits nor aborts. A write this fresh may be in flight.
    assert store.sweep_unfinished(time.time() - 3600) == 0
    if size > 1000:
        assert store.sweep_unfinished(time.time() + 5) == 1
    else:  # a small S3 write is still in memory only: nothing was left on the server
        assert store.sweep_unfinished(time.time() + 5) == (0 if store.kind == "s3" else 1)
    assert store.sweep_unfinished(time.time() + 5) == 0
    assert list(store.list()) == [("t1/kept", 9)]
    with contextlib.suppress(Exception):  # the dead server's writer: let it go quietly
        w.abort()
    assert store.get("t1/kept") == b"committed"
    if store.kind == "local":
        assert not any(store.tmp.iterdir())  # type: ignore[attr-defined]


def test_put_replaces_whole(store: BlobStore) -> None:
    store.put("k", b"a long first version")
    store.put("k", b"short")
    assert store.get("k") == b"short"


def test_nothing_is_visible_before_commit_and_abort_leaves_nothing(store: BlobStore) -> None:
    w = store.writer("t1/new")
    w.write(b"x" * 1000)
    assert not store.exists("t1/new")
    assert list(store.list()) == []
    w.abort()
    w.abort()  # idempotent
    assert not store.exists("t1/new")
    assert list(store.list()) == []


def test_an_exception_while_writing_keeps_the_old_blob(store: BlobStore) -> None:
    store.put("k", b"old")

    def chunks() -> Iterator[bytes]:
        yield b"new-part"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put("k", chunks())
    assert store.get("k") == b"old"
    assert [k for k, _ in store.list()] == ["k"]


def test_big_blob_in_many_parts_round_trips(store: BlobStore) -> None:
    # Over the S3 multipart threshold, so the multipart path is exercised too.
    part = bytes(range(256)) * 4096  # 1 MiB
    with store.writer("big") as w:
        for _ in range(20):
            w.write(part)
    assert store.size("big") == 20 * len(part)
    got = b"".join(store.read("big", chunk_size=3 << 20))
    assert got == part * 20


def test_aborting_a_multipart_write_leaves_nothing(store: BlobStore) -> None:
    w = store.writer("big")
    for _ in range(20):
        w.write(b"z" * (1 << 20))
    w.abort()
    assert not store.exists("big")
    assert list(store.list()) == []


@pytest.mark.parametrize(("start", "end", "expected"), [
    (0, None, b"0123456789"), (3, 7, b"3456"), (8, None, b"89"), (5, 100, b"56789"),
    (10, None, b""), (4, 4, b""),
])
def test_ranged_reads(store: BlobStore, start: int, end: int | None, expected: bytes) -> None:
    store.put("r", b"0123456789")
    assert store.get("r", start, end) == expected
    assert b"".join(store.read("r", start, end, chunk_size=3)) == expected


def test_reading_a_missing_blob_raises_file_not_found(store: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.read("nope")


def test_append(store: BlobStore) -> None:
    assert store.append("log", [b"one\n"]) == 4  # a missing blob counts as empty
    assert store.append("log", [b"two\n", b"three\n"]) == 14
    assert store.get("log") == b"one\ntwo\nthree\n"


def test_append_at_drops_bytes_past_it(store: BlobStore) -> None:
    store.put("log", b"kept|garbage")
    assert store.append("log", [b"+new"], at=4) == 8
    assert store.get("log") == b"kept+new"
    with pytest.raises(ValueError):
        store.append("log", [b"x"], at=100)
    assert store.get("log") == b"kept+new"


def test_a_failed_append_leaves_the_blob_as_it_was(store: BlobStore) -> None:
    store.put("log", b"before")

    def chunks() -> Iterator[bytes]:
        yield b"half"
        raise ConnectionError("cut")

    with pytest.raises(ConnectionError):
        store.append("log", chunks())
    assert store.get("log") == b"before"


def test_delete_is_idempotent(store: BlobStore) -> None:
    store.put("t1/a/b", b"x")
    store.delete("t1/a/b")
    store.delete("t1/a/b")
    assert not store.exists("t1/a/b")
    assert list(store.list()) == []


@pytest.mark.parametrize("key", [
    "", "/abs", "../escape", "a/../../b", "a//b", "a/./b", ".tmp/x", "a\x00b", "a\\b",
    "a%2F..%2Fb", "a/", "C:/x",
])
def test_unsafe_keys_are_refused_before_any_io(store: BlobStore, key: str) -> None:
    for op in (lambda: store.writer(key), lambda: store.size(key),
               lambda: store.delete(key), lambda: store.append(key, [b"x"])):
        with pytest.raises(ValueError):
            op()
    assert list(store.list()) == []


def test_local_store_keeps_blobs_inside_its_root(tmp_path: Path) -> None:
    store = open_blob_store("", tmp_path / "blobs")
    store.put("t1/x", b"data")
    assert (tmp_path / "blobs" / "t1" / "x").read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs"]
    store.delete("t1/x")
    assert not (tmp_path / "blobs" / "t1").exists()  # emptied directories go too


def test_unknown_store_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported blob store URL") as refused:
        open_blob_store("ftp://host/x", tmp_path)
    assert "file://, memory://, s3://" in str(refused.value)  # says what would work


def test_each_memory_url_opens_a_store_of_its_own(tmp_path: Path) -> None:
    one, two = (open_blob_store("memory://", tmp_path) for _ in range(2))
    one.put("k", b"one")
    assert not two.exists("k")
    assert one.kind == "memory" and not any(tmp_path.iterdir())


def test_a_write_swept_as_unfinished_cannot_commit_afterwards(tmp_path: Path) -> None:
    store = open_blob_store("memory://", tmp_path)
    w = store.writer("k")
    w.write(b"stale")
    assert store.sweep_unfinished(time.time() + 5) == 1
    with pytest.raises(RuntimeError, match="sweeper"):
        w.commit()
    assert not store.exists("k")


def test_the_memory_store_is_safe_across_threads(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = open_blob_store("memory://", tmp_path)

    def work(i: int) -> None:
        for j in range(50):
            store.put(f"t{i}/b{j}", bytes([i]) * j)
            store.append(f"t{i}/log", [b"x"])
            assert store.get(f"t{i}/b{j}") == bytes([i]) * j

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert len(list(store.list())) == 8 * 51
    assert all(store.size(f"t{i}/log") == 50 for i in range(8))

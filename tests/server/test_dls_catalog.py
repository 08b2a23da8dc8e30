"""Catalog search by TCUP's query parameters, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from dls_helper import Dls


@pytest.fixture
def dls(api_any) -> Dls:
    d = Dls(api_any, "alice", "bob")
    files = [  # name, size, directory, savepoint, metadata
        ("pune1.csv", 10, "csv", "", "site=pune,rate=5,private@note=check"),
        ("pune2.csv", 2000, "csv", "s1", "site=pune,rate=12"),
        ("mumbai.csv", 30, "csv/2024", "", "site=mumbai,rate=7,owner='A, B'"),
        ("goa.log", 20 << 20, "logs", "", "site=goa,rate=1.5,level=debug"),
        ("firmware.bin", 5, "", "", "device=pump-7"),
    ]
    for name, size, directory, sp, meta in files:
        r = d.upload("alice", b"x" * size, name, directory=directory, savepoint=sp,
                     metadata=meta, comment=f"about {name}")
        assert r.status_code == 201, r.text
    d.upload("bob", b"b", "bob.csv", metadata="site=pune")
    return d


@pytest.mark.parametrize(("expr", "expected"), [
    ("site='pune'", ["pune1.csv", "pune2.csv"]),
    ("site='pune' & rate>=5", ["pune1.csv", "pune2.csv"]),
    ("site='pune' & rate>5", ["pune2.csv"]),
    ("rate<5", ["goa.log"]),
    ("rate<=5", ["goa.log", "pune1.csv"]),
    ("rate!=5", ["goa.log", "mumbai.csv", "pune2.csv"]),
    ("site!='pune'", ["goa.log", "mumbai.csv"]),
    ("site='pune', site='goa'", ["goa.log", "pune1.csv", "pune2.csv"]),
    ("(site='pune', site='goa') & rate<10", ["goa.log", "pune1.csv"]),
    ("site='goa', site='pune' & rate>10", ["goa.log", "pune2.csv"]),  # & binds tighter
    ("site='pu*'", ["pune1.csv", "pune2.csv"]),
    ("sit*='mum*'", ["mumbai.csv"]),
    ("level", ["goa.log"]),
    ("'pump-7'", ["firmware.bin"]),
    ("owner='A, B'", ["mumbai.csv"]),
    ("site>'m'", ["mumbai.csv", "pune1.csv", "pune2.csv"]),  # quoted: compared as text
    ("private@note='check'", ["pune1.csv"]),
    ("dls:lineage='CREATED' & device", ["firmware.bin"]),
    ("nosuchkey", []),
])
def test_metadata_expressions(dls: Dls, expr: str, expected: list[str]) -> None:
    assert dls.found("alice", metadata=expr) == expected


def test_private_metadata_is_the_uploaders_alone(dls: Dls) -> None:
    r = dls.call("PUT", "alice", "/share", json={"directory": "", "users": ["bob"]})
    assert r.status_code == 207
    assert dls.found("bob", metadata="private@note='check'") == []
    assert dls.found("bob", metadata="no*") == []
    detail = dls.search("bob", filename="pune1.csv").json()["result"][0]
    assert "private@note" not in {m["name"] for m in detail["metadata"]}
    assert dls.found("bob", metadata="site='pune'") == ["bob.csv", "pune1.csv", "pune2.csv"]


@pytest.mark.parametrize(("size", "expected"), [
    (">1kb", ["goa.log", "pune2.csv"]),
    ([">1kb", "<1mb"], ["pune2.csv"]),
    (">=20MB", ["goa.log"]),
    ("=5b", ["firmware.bin"]),
    ("<=10", ["firmware.bin", "pune1.csv"]),
])
def test_size_expressions(dls: Dls, size, expected: list[str]) -> None:
    assert dls.found("alice", size=size) == expected


def test_exact_filters_text_and_owner(dls: Dls) -> None:
    assert dls.found("alice", directory="csv") == ["pune1.csv", "pune2.csv"]
    assert dls.found("alice", directory="/csv/2024") == ["mumbai.csv"]
    assert dls.found("alice", savepoint="s1") == ["pune2.csv"]
    assert dls.found("alice", filename="goa.log") == ["goa.log"]
    assert dls.found("alice", text="MUMBAI") == ["mumbai.csv"]  # name, case-insensitive
    assert dls.found("alice", text="pump") == ["firmware.bin"]  # a metadata value
    assert dls.found("alice", text="about goa") == ["goa.log"]  # the comment
    assert dls.found("alice", text="check") == []  # private values are not free text
    assert dls.found("bob") == ["bob.csv"]  # a user sees only their own (and shared)
    assert dls.found("alice", ownFile="false") == []


def test_time_range(dls: Dls) -> None:
    assert len(dls.found("alice", time="01-JAN-2020 00:00:00 +0000")) == 5
    assert dls.found("alice", time=["01-JAN-2020 00:00:00 +0000",
                                     "01-JAN-2021 00:00:00 +0000"]) == []
    assert dls.found("alice", time="2999-01-01T00:00:00Z") == []


def test_sort_and_paging(dls: Dls) -> None:
    r = dls.search("alice", sort="size", order="asc", pageSize=2, pageNo=1).json()
    assert (r["count"], r["total-page"], r["page"]) == (5, 3, 1)
    assert [f["filename"] for f in r["result"]] == ["firmware.bin", "pune1.csv"]
    r = dls.search("alice", sort="size", order="asc", pageSize=2, pageNo=3).json()
    assert [f["filename"] for f in r["result"]] == ["goa.log"]
    names = [f["filename"] for f in dls.search("alice", sort="fileName").json()["result"]]
    assert names == sorted(names)
    sizes = [f["size-bytes"] for f in dls.search("alice", sort="size").json()["result"]]
    assert sizes == sorted(sizes, reverse=True)


def test_result_fields(dls: Dls) -> None:
    f = dls.search("alice", filename="pune2.csv").json()["result"][0]
    assert f["uri"] == dls.uri("alice", "csv/s1/pune2.csv")
    assert f["size-bytes"] == 2000 and f["permitted-action"] == "RWD"
    assert f["content-type"] == "text/csv"
    assert f["created-on"].endswith(" UTC") and f["created-by"] == "alice"

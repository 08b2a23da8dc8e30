"""Bounds of what a catalog request may ask of the database, on SQLite and PostgreSQL.

Hostile searches (thousands of terms or brackets, very long expressions) get an answer
or a 400 naming the limit at once; every number and text a catalog, explore, share or
relation request carries is checked before SQL (a 400 naming the field, never a 500).
"""

from __future__ import annotations

import re
import time

import pytest
from dls_helper import Dls

from pyconnector_server.datalake.query import (
    MAX_EXPRESSION,
    MAX_NESTING,
    MAX_SIZE_TERMS,
    MAX_TERMS,
)

# Generous: the work is bounded by the limits, not by this; the machine is shared.
QUICK = 5.0


@pytest.fixture
def dls(api_any) -> Dls:
    d = Dls(api_any, "alice", "bob")
    for name, meta in [("pune.csv", "site=pune,rate=5"), ("goa.csv", "site=goa,rate=12"),
                       ("x.csv", "site=x,rate=1,level=debug")]:
        r = d.upload("alice", b"0123456789", name, metadata=meta)
        assert r.status_code == 201, r.text
    return d


def _refused(r, field: str, *words: str) -> None:
    assert r.status_code == 400, r.text[:300]
    body = r.json()
    assert body["field"] == field, body
    for word in words:
        assert word in body["message"], body["message"][:300]


def _timed_search(dls: Dls, **params):
    t0 = time.perf_counter()
    r = dls.search("alice", **params)
    return r, time.perf_counter() - t0


# -- item 3: the shape of a metadata expression ---------------------------------------------
@pytest.mark.parametrize(("expr", "limit"), [
    (" & ".join(["site='x'"] * 2000), f"at most {MAX_EXPRESSION} characters"),
    ("a" + "&a" * 1999, f"at most {MAX_TERMS} terms"),            # 2,000 terms, 3,999 chars
    (", ".join(f"r{i}" for i in range(2000)), f"at most {MAX_EXPRESSION} characters"),
    ("(" * 2000 + "a" + ")" * 2000, f"at most {MAX_EXPRESSION} characters"),
    ("(" * 1999 + "a" + ")" * 1999, f"at most {MAX_NESTING} levels of brackets"),
    ("(" * 1999 + "a", f"at most {MAX_NESTING} levels of brackets"),  # unbalanced too
    ("site='" + "x" * 50_000 + "'", f"at most {MAX_EXPRESSION} characters"),
    ("a" + "&a" * MAX_TERMS, f"at most {MAX_TERMS} terms"),       # one over
    ("(" * (MAX_NESTING + 1) + "a" + ")" * (MAX_NESTING + 1), "levels of brackets"),
    ("site='" + "x" * 1025 + "'", "a value is at most 1024 characters"),
])
def test_hostile_expressions_are_refused_at_once(dls: Dls, expr: str, limit: str) -> None:
    r, seconds = _timed_search(dls, metadata=expr)
    _refused(r, "metadata", limit)
    assert seconds < QUICK


def test_expressions_at_the_limits_are_answered_at_once(dls: Dls) -> None:
    cases = {
        # 64 identical terms: one flag, one pass over the metadata.
        " & ".join(["site='x'"] * MAX_TERMS): ["x.csv"],
        # 64 distinct terms, AND and OR mixed, brackets as deep as allowed.
        " & ".join(f"(rate<{100 + i}, site='nowhere')" for i in range(MAX_TERMS // 2)):
            ["goa.csv", "pune.csv", "x.csv"],
        "(" * MAX_NESTING + "site='goa'" + ")" * MAX_NESTING: ["goa.csv"],
        ", ".join(f"rate={i}" for i in range(MAX_TERMS)): ["goa.csv", "pune.csv", "x.csv"],
    }
    for expr, expected in cases.items():
        assert len(expr) <= MAX_EXPRESSION
        r, seconds = _timed_search(dls, metadata=expr)
        assert r.status_code == 200, r.text[:300]
        assert sorted(f["filename"] for f in r.json()["result"]) == expected, expr[:80]
        assert seconds < QUICK


@pytest.mark.parametrize(("expr", "expected"), [
    # Flattened and de-duplicated terms mean the same as written.
    ("site='pune' & (site='pune' & rate>=5)", ["pune.csv"]),
    ("(site='pune', site='goa') & (rate<10, rate>100)", ["pune.csv"]),
    ("site='goa', (site='pune' & rate>10)", ["goa.csv"]),
    ("site='goa', site='goa' & rate>10", ["goa.csv"]),
    ("site='x', (site='x' & rate>10)", ["x.csv"]),              # not site='x', rate>10
    ("(site='x', site='goa') & (level, rate>10)", ["goa.csv", "x.csv"]),
    ("((site='x') & ((level)))", ["x.csv"]),
    ("site='pune' & site='goa'", []),                           # no file has both
    ("site='pune' & rate=5 & rate!=5", []),                     # != is another row
    ("level & site", ["x.csv"]),
])
def test_rewritten_expressions_keep_their_meaning(dls: Dls, expr: str,
                                                  expected: list[str]) -> None:
    assert dls.found("alice", metadata=expr) == expected


def test_repeated_size_parameters_are_bounded(dls: Dls) -> None:
    assert dls.found("alice", size=[">1b"] * MAX_SIZE_TERMS) == ["goa.csv", "pune.csv",
                                                                 "x.csv"]
    r, seconds = _timed_search(dls, size=[">1b"] * 2000)
    _refused(r, "size", f"at most {MAX_SIZE_TERMS} size= parameters")
    assert seconds < QUICK


# -- item 7: numbers ------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "field", "words"), [
    ({"size": ">9999999999999999999"}, "size", ["largest size"]),
    ({"size": ">99999pb"}, "size", ["largest size", str(2**63 - 1)]),
    ({"size": ">8192pb"}, "size", ["largest size"]),           # 2**63: one byte over
    ({"size": "<" + "9" * 5000}, "size", ["at most 128 characters"]),
    ({"size": ">1e400"}, "size", ["not a size expression"]),
    ({"pageNo": "10000000000000000000"}, "pageNo", ["at most 2147483647"]),
    ({"pageNo": "9" * 5000}, "pageNo", ["expected an integer"]),
    ({"pageNo": "-1"}, "pageNo", []),
    ({"pageSize": "10000000000000000000"}, "pageSize", ["between 1 and"]),
    ({"time": "9" * 25}, "time", ["out of range"]),
    ({"time": "9" * 5000}, "time", ["at most 128 characters"]),
    ({"metadata": "rate>" + "9" * 400}, "metadata", []),      # a number too long to be one
])
def test_catalog_numbers_are_bounded(dls: Dls, params: dict, field: str,
                                     words: list[str]) -> None:
    r = dls.search("alice", **params)
    if field == "metadata":
        # rate>99…9 (400 digits) is a float compare, not an overflow: an answer.
        assert r.status_code == 200, r.text[:300]
        assert r.json()["count"] == 0
        return
    _refused(r, field, *words)


def test_the_largest_size_is_answered(dls: Dls) -> None:
    assert len(dls.found("alice", size=f"<={2**63 - 1}")) == 3
    assert dls.found("alice", size=">8191pb") == []


@pytest.mark.parametrize(("params", "field"), [
    ({"pageNo": "10000000000000000000"}, "pageNo"),
    ({"pageNo": "9" * 5000}, "pageNo"),
    ({"pageNo": "0"}, "pageNo"),
    ({"pageSize": "10000000000000000000"}, "pageSize"),
    ({"pageSize": "x"}, "pageSize"),
])
def test_explore_numbers_are_bounded(dls: Dls, params: dict, field: str) -> None:
    r = dls.call("GET", "alice", "/catalog/explore", params=params)
    _refused(r, field)


def test_explore_pages_past_the_end_are_empty(dls: Dls) -> None:
    r = dls.call("GET", "alice", "/catalog/explore", params={"pageNo": str(2**31 - 1)})
    assert r.status_code == 200, r.text
    assert (r.json()["files"], r.json()["record-count"]) == ([], 3)


@pytest.mark.parametrize(("header", "status", "body", "content_range"), [
    ("bytes=0-" + "9" * 5000, 206, b"0123456789", "bytes 0-9/10"),     # end clipped
    ("bytes=2-99999999999999999999", 206, b"23456789", "bytes 2-9/10"),
    ("bytes=-" + "9" * 5000, 206, b"0123456789", "bytes 0-9/10"),      # suffix: all
    ("bytes=" + "9" * 5000 + "-", 416, b"", "bytes */10"),            # start past the end
    ("bytes=" + "9" * 5000 + "-" + "9" * 5000, 416, b"", "bytes */10"),
    ("bytes=99999999999999999999-", 416, b"", "bytes */10"),
    ("bytes=0000000000000000000000003-4", 206, b"34", "bytes 3-4/10"),  # zeros are no size
])
def test_range_positions_of_any_length(dls: Dls, header: str, status: int, body: bytes,
                                       content_range: str) -> None:
    r = dls.download("alice", dls.uri("alice", "pune.csv"), range=header)
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-range"] == content_range
    if status == 206:
        assert r.content == body


# -- item 6, catalog side: NUL and over-long values ----------------------------------------
def _long(field: str) -> str:
    """A value of the parameter's shape, longer than it may be."""
    if field in ("file-uri", "uri", "source", "target"):
        # Ten full directory segments: each part is valid, the path is not (> 600).
        return "t/alice/" + "/".join(["d" * 64] * 10) + "/f.csv"
    if field == "metadata":
        return "site='" + "x" * 5000 + "'"
    if field == "directory" or field == "path":
        return "a" * 300
    return "a" * 5000


def _nul(field: str) -> str:
    if field in ("file-uri", "uri", "source", "target"):
        return "t/alice/f\x00.csv"
    if field == "metadata":
        return "site='pu\x00ne'"
    return "pu\x00ne"


# (method, route, where the value goes, parameter, the field the 400 names)
PARAMS = [
    ("GET", "/catalog", "query", "text", "text"),
    ("GET", "/catalog", "query", "metadata", "metadata"),
    ("GET", "/catalog", "query", "filename", "filename"),
    ("GET", "/catalog", "query", "directory", "directory"),
    ("GET", "/catalog", "query", "savepoint", "savepoint"),
    ("GET", "/catalog", "query", "user", "user"),
    ("GET", "/catalog", "query", "uri", "uri"),
    ("GET", "/catalog", "query", "time", "time"),
    ("GET", "/catalog", "query", "size", "size"),
    ("GET", "/catalog/explore", "query", "path", "path"),
    ("GET", "/catalog/explore", "query", "user", "user"),
    ("DELETE", "/share", "query", "file-uri", "file-uri"),
    ("DELETE", "/share", "query", "directory", "directory"),
    ("DELETE", "/share", "query", "user", "user"),
    ("PUT", "/share", "json", "file-uri", "file-uri"),
    ("PUT", "/share", "json", "directory", "directory"),
    ("PUT", "/share", "json", "users", "users[0]"),
    ("GET", "/relation", "query", "file-uri", "file-uri"),
    ("GET", "/relation", "query", "relation", "relation"),
    ("DELETE", "/relation", "query", "source", "source"),
    ("DELETE", "/relation", "query", "target", "target"),
    ("DELETE", "/relation", "query", "relation", "relation"),
    ("POST", "/relation", "json", "source", "source"),
    ("POST", "/relation", "json", "target", "target"),
    ("POST", "/relation", "json", "relation", "relation"),
]


@pytest.mark.parametrize("kind", ["nul", "long"])
@pytest.mark.parametrize(("method", "route", "where", "param", "field"), PARAMS,
                         ids=[f"{m} {r} {p}" for m, r, _, p, _ in PARAMS])
def test_nul_or_over_long_is_400_naming_the_field(dls: Dls, kind: str, method: str,
                                                  route: str, where: str, param: str,
                                                  field: str) -> None:
    value = _nul(param) if kind == "nul" else _long(param)
    # The other parameters a route needs, valid, so the one under test decides.
    uri = dls.uri("alice", "pune.csv")
    base = {"/share": {"user": "bob"} if method == "DELETE" else
            {"users": ["bob"], "file-uri": uri},
            "/relation": {"source": uri, "target": dls.uri("alice", "goa.csv"),
                          "relation": "derivedFrom"} if method != "GET" else {}}.get(route, {})
    if method == "PUT" and param == "directory":
        base = {"users": ["bob"]}
    if param == "users":
        value = [value]
    data = {**base, param: value}
    kw = {"json": data} if where == "json" else {"params": data}
    r = dls.call(method, "alice", route, **kw)
    _refused(r, field)
    if kind == "nul":
        assert "NUL" in r.json()["message"]
    else:  # the limit is named
        assert re.search(r"\d", r.json()["message"].split(":", 1)[1]), r.json()["message"]

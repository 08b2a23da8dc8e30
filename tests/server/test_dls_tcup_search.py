"""TCUP's catalog conventions on SQLite and PostgreSQL: the search flags, explore's
records, fetch and nameRegex, savepoints with '/', long directory names, and the
``dd-MMM-yyyy HH:mm:ss z`` times of the DLS answers."""

from __future__ import annotations

import re

import pytest
from dls_helper import Dls

from pyconnector.times import parse_time

TCUP_TIME = re.compile(r"^\d{2}-(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)-\d{4} "
                       r"\d{2}:\d{2}:\d{2} UTC$")
NO_FILE_IS = ("external", "transferred", "deleted", "bundled", "locked")


@pytest.fixture
def dls(api_any) -> Dls:
    return Dls(api_any, "alice", "bob")


def _explore(dls: Dls, user: str = "alice", **params: str) -> dict:
    r = dls.call("GET", user, "/catalog/explore", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _names(page: dict, files_first: bool = False) -> list[tuple[str, str]]:
    dirs = [("d", d["name"]) for d in page["directories"]]
    files = [("f", f["name"]) for f in page["files"]]
    return files + dirs if files_first else dirs + files


# -- search flags ---------------------------------------------------------------------------
@pytest.mark.parametrize("flag", NO_FILE_IS)
def test_flags_of_states_no_file_is_in_false_matches_all_true_none(dls: Dls,
                                                                   flag: str) -> None:
    for name in ("a.csv", "b.csv"):
        assert dls.upload("alice", b"1", name).status_code == 201
    assert dls.found("alice", **{flag: "false"}) == ["a.csv", "b.csv"]
    assert dls.found("alice", **{flag: "FALSE"}) == ["a.csv", "b.csv"]
    assert dls.found("alice", **{flag: "true"}) == []
    assert dls.found("alice", **{flag: "1"}) == []
    assert dls.found("alice", **{flag: ""}) == ["a.csv", "b.csv"]  # empty: not given


def test_own_file_is_yours_or_shared_with_you(dls: Dls) -> None:
    assert dls.upload("alice", b"1", "mine.csv").status_code == 201
    assert dls.upload("bob", b"1", "shared.csv").status_code == 201
    r = dls.call("PUT", "bob", "/share", json={"file-uri": dls.uri("bob", "shared.csv"),
                                                "users": ["alice"]})
    assert r.status_code == 207, r.text
    assert dls.found("alice") == ["mine.csv", "shared.csv"]
    assert dls.found("alice", ownFile="true") == ["mine.csv"]
    assert dls.found("alice", ownFile="no") == ["shared.csv"]


@pytest.mark.parametrize("flag", ("ownFile", *NO_FILE_IS))
@pytest.mark.parametrize("value", ["maybe", "2", "tru"])
def test_a_flag_that_is_not_a_boolean_is_400_naming_it(dls: Dls, flag: str,
                                                        value: str) -> None:
    r = dls.search("alice", **{flag: value})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == flag
    assert flag in r.json()["message"]


def test_a_flag_given_twice_is_400(dls: Dls) -> None:
    r = dls.search("alice", locked=["false", "true"])
    assert r.status_code == 400
    assert r.json()["field"] == "locked"


# -- explore ------------------------------------------------------------------------------------
@pytest.fixture
def tree(dls: Dls) -> Dls:
    for name, directory, savepoint in [
            ("top.csv", "", ""), ("zeta.log", "", ""), ("a.csv", "csv", ""),
            ("b.csv", "csv", "run/v1"), ("c.csv", "csv/2024", ""), ("d.log", "logs", "")]:
        r = dls.upload("alice", b"12", name, directory=directory, savepoint=savepoint,
                       metadata="site=pune")
        assert r.status_code == 201, r.text
    return dls


def test_explore_records_carry_tcups_fields(tree: Dls) -> None:
    root = _explore(tree)
    assert root["current-page"] == 1 and root["total-page"] == 1
    assert root["record-count"] == 4  # csv, logs, top.csv, zeta.log
    csv = root["directories"][0]
    assert {k: csv[k] for k in ("name", "path", "parent", "size-bytes", "file-count",
                                "subdir-count", "created-by", "metadata")} == {
        "name": "csv", "path": "csv", "parent": "", "size-bytes": 6, "file-count": 3,
        "subdir-count": 1, "created-by": "alice", "metadata": []}
    assert TCUP_TIME.match(csv["created-on"])
    inner = _explore(tree, path="/csv")
    b = next(f for f in inner["files"] if f["name"] == "b.csv")
    assert {k: b[k] for k in ("name", "path", "parent", "size-bytes", "file-count",
                              "subdir-count", "created-by", "savepoint")} == {
        "name": "b.csv", "path": "csv/run/v1/b.csv", "parent": "csv", "size-bytes": 2,
        "file-count": 0, "subdir-count": 0, "created-by": "alice", "savepoint": "run/v1"}
    assert {"name": "site", "value": "pune", "privacy": "public"} in b["metadata"]
    assert TCUP_TIME.match(b["created-on"])
    assert [d["parent"] for d in inner["directories"]] == ["csv"]


@pytest.mark.parametrize(("fetch", "expected"), [
    (None, [("d", "csv"), ("d", "logs"), ("f", "top.csv"), ("f", "zeta.log")]),
    ("directoryFirst", [("d", "csv"), ("d", "logs"), ("f", "top.csv"), ("f", "zeta.log")]),
    ("fileFirst", [("f", "top.csv"), ("f", "zeta.log"), ("d", "csv"), ("d", "logs")]),
    ("directoryOnly", [("d", "csv"), ("d", "logs")]),
    ("fileOnly", [("f", "top.csv"), ("f", "zeta.log")]),
])
def test_fetch_picks_and_orders_the_records_paged_as_one_list(tree: Dls, fetch: str | None,
                                                              expected: list) -> None:
    params = {} if fetch is None else {"fetch": fetch}
    whole = _explore(tree, **params)
    assert whole["record-count"] == len(expected)
    pages = [_explore(tree, pageSize="3", pageNo=str(n), **params) for n in (1, 2, 3)]
    assert [p["total-page"] for p in pages] == [-(-len(expected) // 3)] * 3
    first = fetch == "fileFirst"
    assert _names(pages[0], first) + _names(pages[1], first) == expected
    if first:  # the page after the files holds the directories left
        assert _names(pages[1]) == [("d", "logs")]
    assert _names(pages[2]) == []


def test_fetch_must_be_one_of_tcups(tree: Dls) -> None:
    r = tree.call("GET", "alice", "/catalog/explore", params={"fetch": "everything"})
    assert r.status_code == 400
    assert r.json()["field"] == "fetch"


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"\.csv$", [("f", "top.csv")]),
    ("^l", [("d", "logs")]),
    ("o", [("d", "logs"), ("f", "top.csv"), ("f", "zeta.log")]),
    ("^(csv|zeta)", [("d", "csv"), ("f", "zeta.log")]),
    ("^[^a-s][a-z]+[.]log$", [("f", "zeta.log")]),
    ("nothing", []),
])
def test_name_regex_keeps_the_records_whose_name_matches(tree: Dls, pattern: str,
                                                         expected: list) -> None:
    page = _explore(tree, nameRegex=pattern)
    assert _names(page) == expected
    assert page["record-count"] == len(expected)


def test_name_regex_pages_the_matching_files(tree: Dls) -> None:
    for i in range(5):
        assert tree.upload("alice", b"1", f"m{i}.txt", directory="many").status_code == 201
        assert tree.upload("alice", b"1", f"x{i}.bin", directory="many").status_code == 201
    page = _explore(tree, path="many", nameRegex=r"\.txt$", pageSize="2", pageNo="2")
    assert page["record-count"] == 5 and page["total-page"] == 3
    assert _names(page) == [("f", "m2.txt"), ("f", "m3.txt")]


def test_a_backtracking_pattern_is_answered(tree: Dls) -> None:
    # Exponential for a backtracking engine on this name; a state set here.
    name = "a" * 200 + "!.csv"
    assert tree.upload("alice", b"1", name, directory="slow").status_code == 201
    assert _names(_explore(tree, path="slow", nameRegex=r"^(a+)+$")) == []
    assert _names(_explore(tree, path="slow", nameRegex=r"^(a|aa)+!")) == [("f", name)]


@pytest.mark.parametrize("pattern", [
    "(", "a{2,1}", r"(a)\1", "(?=a)", "(?<!a)b", "(?i)csv", r"\bcsv", "a{999}b{999}c{999}",
    "x" * 257])
def test_a_bad_or_unsupported_name_regex_is_400_naming_it(tree: Dls, pattern: str) -> None:
    r = tree.call("GET", "alice", "/catalog/explore", params={"nameRegex": pattern})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "nameRegex"


# -- savepoints with '/', long directory names -------------------------------------------------
@pytest.mark.parametrize(("savepoint", "stored"), [
    ("run/v1", "run/v1"), ("/run/v1", "run/v1"), ("a1/b.2/c:3/d-4/e_5/f/g/h/i/j", None)])
def test_a_savepoint_with_slashes_works_end_to_end(dls: Dls, savepoint: str,
                                                   stored: str | None) -> None:
    stored = stored or savepoint
    r = dls.upload("alice", b"data", "f.csv", directory="csv", savepoint=savepoint)
    assert r.status_code == 201, r.text
    uri = dls.uri("alice", f"csv/{stored}/f.csv")
    assert r.json()["uri"] == uri
    assert dls.download("alice", uri).content == b"data"
    for sp in (savepoint, stored):
        page = dls.search("alice", savepoint=sp).json()
        assert [(f["savepoint"], f["uri"]) for f in page["result"]] == [(stored, uri)]
    assert [f["uri"] for f in dls.search("alice", uri=uri).json()["result"]] == [uri]
    assert [f["uri"] for f in _explore(dls, path="csv")["files"]] == [uri]
    assert dls.delete("alice", uri).json()[0]["code"] == 200
    assert dls.download("alice", uri).status_code == 404


def test_a_savepoints_first_segment_is_not_also_a_directory(dls: Dls) -> None:
    assert dls.upload("alice", b"1", "f.csv", directory="csv",
                      savepoint="run/v1").status_code == 201
    r = dls.upload("alice", b"2", "g.csv", directory="csv/run")
    assert r.status_code == 409
    assert r.json()["field"] == "directory"
    assert dls.upload("alice", b"3", "h.csv", directory="d2").status_code == 201
    r = dls.upload("alice", b"4", "i.csv", savepoint="d2/v1")
    assert r.status_code == 409
    assert r.json()["field"] == "savepoint"


def test_directory_names_up_to_255_characters_work_end_to_end(dls: Dls) -> None:
    long = "d" * 200 + "/" + "e" * 54
    assert len(long) == 255
    r = dls.upload("alice", b"data", "f.csv", directory="/" + long, savepoint="sp")
    assert r.status_code == 201, r.text
    uri = dls.uri("alice", f"{long}/sp/f.csv")
    assert r.json()["uri"] == uri
    assert dls.download("alice", uri).content == b"data"
    assert dls.found("alice", directory=long) == ["f.csv"]
    top = _explore(dls)["directories"]
    assert [(d["name"], d["file-count"]) for d in top] == [("d" * 200, 1)]
    assert [f["uri"] for f in _explore(dls, path=long)["files"]] == [uri]
    assert dls.delete("alice", uri).json()[0]["code"] == 200
    r = dls.upload("alice", b"data", "f.csv", directory=long + "x")
    assert r.status_code == 400
    assert r.json()["field"] == "directory"


# -- times --------------------------------------------------------------------------------------
def test_every_time_in_dls_answers_is_tcups_format(dls: Dls) -> None:
    assert dls.upload("alice", b"1", "a.csv", directory="d").status_code == 201
    assert dls.upload("alice", b"2", "b.csv", directory="d").status_code == 201
    a, b = dls.uri("alice", "d/a.csv"), dls.uri("alice", "d/b.csv")
    assert dls.call("POST", "alice", "/relation", json={
        "source": a, "target": b, "relation": "precedes"}).status_code == 201
    assert dls.call("PUT", "alice", "/share", json={"directory": "d", "users": ["bob"]}
                    ).status_code == 207
    found = dls.search("alice").json()["result"]
    times = [f[k] for f in found for k in ("created-on", "updated-on")]
    page = _explore(dls)
    times += [d["created-on"] for d in page["directories"]]
    times += [f["created-on"] for f in _explore(dls, path="d")["files"]]
    times += [r["created-on"] for r in dls.call("GET", "alice", "/relation").json()]
    times += [s["created-on"] for s in dls.call("GET", "alice", "/share").json()]
    users = dls.api.get("/api/dls/admin/users").json()
    times += [u["created-on"] for u in users]
    assert len(times) == 4 + 1 + 2 + 1 + 1 + len(users)
    for text in times:
        assert TCUP_TIME.match(text), text
        assert parse_time(text) % 1000 == 0  # whole seconds, read back as UTC

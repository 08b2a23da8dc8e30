"""Sharing files and directories between users of a tenant; relations between files."""

from __future__ import annotations

import pytest
from dls_helper import Dls


@pytest.fixture
def dls(api_any) -> Dls:
    d = Dls(api_any, "alice", "bob", "carol")
    d.upload("alice", b"report", "r.csv", directory="reports")
    d.upload("alice", b"deep", "d.csv", directory="reports/2024")
    d.upload("alice", b"private", "p.csv", directory="private")
    return d


def _share(dls: Dls, who: str, users: list[str], perms: str = "R", **target: str):
    return dls.call("PUT", who, "/share", json={**target, "users": users, "permissions": perms})


def test_an_unshared_file_is_404_to_another_user(dls: Dls) -> None:
    uri = dls.uri("alice", "reports/r.csv")
    assert dls.download("bob", uri).status_code == 404
    assert dls.delete("bob", uri).status_code == 404
    assert dls.found("bob") == []


def test_share_a_file_read_only(dls: Dls) -> None:
    uri = dls.uri("alice", "reports/r.csv")
    r = _share(dls, "alice", ["bob", "nobody", "alice"], **{"file-uri": uri})
    assert r.status_code == 207
    assert [(i["value"], i["code"]) for i in r.json()] == [
        ("bob", 200), ("nobody", 404), ("alice", 400)]
    assert dls.download("bob", uri).content == b"report"
    assert dls.found("bob") == ["r.csv"]
    assert dls.search("bob").json()["result"][0]["permitted-action"] == "R"
    assert dls.download("carol", uri).status_code == 404
    r = dls.delete("bob", uri)
    assert r.status_code == 409  # TCUP's status for a missing privilege
    assert r.json()["message"].startswith("no.delete.privilege")
    r = dls.upload("bob", b"evil", None, **{"file-uri": uri, "mode": "OVERWRITE"})
    assert r.status_code == 409
    assert dls.download("alice", uri).content == b"report"


def test_share_with_write_and_delete(dls: Dls) -> None:
    uri = dls.uri("alice", "reports/r.csv")
    _share(dls, "alice", ["bob"], "RW", **{"file-uri": uri})
    r = dls.upload("bob", b"+bob", None, **{"file-uri": uri, "mode": "APPEND"})
    assert r.status_code == 200, r.text
    assert dls.download("alice", uri).content == b"report+bob"
    assert dls.search("alice", uri=uri).json()["result"][0]["updated-by"] == "bob"
    assert dls.delete("bob", uri).status_code == 409
    _share(dls, "alice", ["bob"], "D", **{"file-uri": uri})  # R implied; replaces RW
    assert dls.delete("bob", uri).status_code == 207
    assert dls.download("alice", uri).status_code == 404


def test_share_a_directory_covers_everything_below_it(dls: Dls) -> None:
    r = _share(dls, "alice", ["bob"], directory="reports")
    assert r.json()[0]["code"] == 200
    assert dls.found("bob") == ["d.csv", "r.csv"]
    assert dls.download("bob", dls.uri("alice", "reports/2024/d.csv")).content == b"deep"
    assert dls.download("bob", dls.uri("alice", "private/p.csv")).status_code == 404
    explore = dls.call("GET", "bob", "/catalog/explore", params={"user": "alice"}).json()
    assert [d["name"] for d in explore["directories"]] == ["reports"]
    shares = dls.call("GET", "bob", "/share").json()
    assert [(s["owner"], s["user"], s["directory"], s["permissions"]) for s in shares] == [
        ("alice", "bob", "reports", "R")]


def test_revoke(dls: Dls) -> None:
    _share(dls, "alice", ["bob", "carol"], directory="reports")
    r = dls.call("DELETE", "alice", "/share", params={"directory": "reports", "user": "bob"})
    assert r.status_code == 207 and r.json()[0]["code"] == 200
    assert dls.found("bob") == []
    assert dls.found("carol") == ["d.csv", "r.csv"]
    r = dls.call("DELETE", "alice", "/share", params={"directory": "reports", "user": "bob"})
    assert r.json()[0]["code"] == 404


def test_only_the_owner_shares(dls: Dls) -> None:
    uri = dls.uri("alice", "reports/r.csv")
    _share(dls, "alice", ["bob"], "RWD", **{"file-uri": uri})
    r = _share(dls, "bob", ["carol"], **{"file-uri": uri})
    assert r.status_code == 403
    assert dls.download("carol", uri).status_code == 404


def test_relations_link_list_and_remove(dls: Dls) -> None:
    src = dls.uri("alice", "reports/r.csv")
    dst = dls.uri("alice", "reports/2024/d.csv")
    r = dls.call("POST", "alice", "/relation", json={"source": src, "target": dst,
                                                     "relation": "derivedFrom"})
    assert r.status_code == 201, r.text
    assert r.json()["messages"] == ["linked"]
    r = dls.call("POST", "alice", "/relation", json=[
        {"source": src, "target": dst, "relation": "derivedFrom"},
        {"source": dst, "target": src, "relation": "summarisedBy"},
        {"source": src, "target": dls.uri("alice", "nope"), "relation": "x"}])
    assert r.status_code == 207
    assert [i["code"] for i in r.json()] == [409, 201, 404]
    rels = dls.call("GET", "alice", "/relation").json()
    assert [(x["source"], x["relation"], x["target"]) for x in rels] == [
        (src, "derivedFrom", dst), (dst, "summarisedBy", src)]
    assert rels[0]["created-by"] == "alice"
    only = dls.call("GET", "alice", "/relation", params={"relation": "summarisedBy"}).json()
    assert len(only) == 1
    r = dls.call("DELETE", "alice", "/relation", params={"source": src, "target": dst})
    assert r.status_code == 200 and r.json()["count"] == 1
    assert len(dls.call("GET", "alice", "/relation").json()) == 1
    r = dls.call("DELETE", "alice", "/relation", params={"source": src, "target": dst})
    assert r.status_code == 404


def test_relations_are_seen_only_between_visible_files(dls: Dls) -> None:
    src = dls.uri("alice", "reports/r.csv")
    priv = dls.uri("alice", "private/p.csv")
    dls.call("POST", "alice", "/relation", json={"source": src, "target": priv,
                                                 "relation": "uses"})
    _share(dls, "alice", ["bob"], directory="reports")
    assert dls.call("GET", "bob", "/relation").json() == []
    _share(dls, "alice", ["bob"], directory="private")
    assert len(dls.call("GET", "bob", "/relation").json()) == 1
    # Linking needs W on the source: bob has R only.
    r = dls.call("POST", "bob", "/relation", json={"source": src, "target": priv,
                                                   "relation": "other"})
    assert r.status_code == 409


def test_deleting_a_file_removes_its_relations_and_shares(dls: Dls) -> None:
    src = dls.uri("alice", "reports/r.csv")
    dst = dls.uri("alice", "private/p.csv")
    dls.call("POST", "alice", "/relation", json={"source": src, "target": dst,
                                                 "relation": "uses"})
    _share(dls, "alice", ["bob"], **{"file-uri": dst})
    dls.delete("alice", dst)
    assert dls.call("GET", "alice", "/relation").json() == []
    assert dls.call("GET", "bob", "/share").json() == []

"""Private metadata (``private@key``) is visible, searchable and matchable by its owner
alone, whatever spelling a search uses, on SQLite and PostgreSQL.

Private keys are stored as ``<user id>@key``. Alice's ``secret.txt`` carries the private
``p=hush-4242``; ``control.txt`` is the same file without it. Bob, with whom alice shares
everything (read and write), must treat both alike for every spelling: if a search could
tell them apart, it would be an oracle on alice's private value. Carol sees neither.
"""

from __future__ import annotations

import pytest
from dls_helper import DLS, Dls

SECRET = "hush-4242"


@pytest.fixture
def dls(api_any) -> Dls:
    d = Dls(api_any, "alice", "bob", "carol")
    for name, meta in [("secret.txt", f"note=memo,private@p={SECRET}"),
                       ("control.txt", "note=memo")]:
        r = d.upload("alice", b"same bytes", name, metadata=meta, comment="a memo")
        assert r.status_code == 201, r.text
    r = d.upload("bob", b"bob's", "bob.txt", metadata="private@p=bob-own")
    assert r.status_code == 201, r.text
    r = d.upload("carol", b"carol's", "carol.txt", metadata=f"private@p={SECRET}")
    assert r.status_code == 201, r.text
    r = d.call("PUT", "alice", "/share", json={"directory": "", "users": ["bob"],
                                                "permissions": "RW"})
    assert r.status_code == 207 and r.json()[0]["code"] == 200, r.text
    return d


def _id(dls: Dls, name: str) -> int:
    from pyconnector_server.auth import tenant_for_key

    t = tenant_for_key(dls.api.app.state.db, dls.api.api_key)
    u = dls.api.app.state.dls.user_for_key(t, dls.keys[name])
    assert u is not None
    return u.id


def _spellings(aid: int) -> list[str]:
    """Searches that could reach alice's private ``p`` if keys were taken as written."""
    return [
        # as stored: an exact id, and with every operator
        f"{aid}@p", f"{aid}@p='{SECRET}'", f"{aid}@p='h*'", f"{aid}@p>'a'",
        f"{aid}@p<'z'", f"{aid}@p!='x'", f"{aid}@p>=0", f"{aid}@*",
        # wildcards in the key
        "*@p", "*@*", f"*='{SECRET}'", "*='h*'", "*>='hush-4242' & *<='hush-4242'",
        f"{aid}*", f"{aid}*='h*'", "*p='h*'", "*p", "p*", "pri*='h*'", "private*='h*'",
        "private@*='h*'", "private@*", "private@p", f"private@p='{SECRET}'",
        "private@p!='x'", "private@p>'a'",
        # a bare value, a key without the prefix
        f"'{SECRET}'", "'h*'", "'*4242'", "p", f"p='{SECRET}'",
        # combined with other terms
        f"note='memo' & *='{SECRET}'", "(note='x', *='h*') & note",
    ]


def test_a_grantee_cannot_tell_a_private_value_from_none(dls: Dls) -> None:
    aid = _id(dls, "alice")
    for spelling in _spellings(aid):
        r = dls.search("bob", metadata=spelling)
        if "@" in spelling.split("=")[0].replace("private@", ""):
            # Keys as stored (`<id>@p`, `*@p`) are no spelling of a key: 400.
            assert r.status_code == 400, (spelling, r.text)
            assert r.json()["field"] == "metadata"
            assert "'@' is allowed only in the prefix 'private@'" in r.json()["message"]
            continue
        assert r.status_code == 200, (spelling, r.text)
        names = {f["filename"] for f in r.json()["result"]}
        assert ("secret.txt" in names) == ("control.txt" in names), spelling


def test_another_user_never_matches_a_private_value(dls: Dls) -> None:
    aid = _id(dls, "alice")
    for spelling in _spellings(aid):
        r = dls.search("carol", metadata=spelling)
        assert r.status_code in (200, 400), (spelling, r.text)
        if r.status_code == 200:
            names = {f["filename"] for f in r.json()["result"]}
            assert names <= {"carol.txt"}, spelling


@pytest.mark.parametrize("spelling", [
    "private@p", f"private@p='{SECRET}'", "private@p='h*'", "private@p>'a'",
    "private@p!='x'", "private@*", "private@*='h*'", "*='h*'", f"'{SECRET}'", "'*4242'",
    "pri*", "*p", "note='memo' & private@p", "(note='x', *='h*') & note"])
def test_the_owner_finds_its_private_value_by_the_names_it_sees(dls: Dls,
                                                                spelling: str) -> None:
    assert dls.found("alice", metadata=spelling) == ["secret.txt"]


def test_private_keys_are_per_user_in_both_directions(dls: Dls) -> None:
    # Bob's private@p is his own key, on his own file only.
    assert dls.found("bob", metadata="private@p") == ["bob.txt"]
    assert dls.found("bob", metadata="private@*") == ["bob.txt"]
    assert dls.found("carol", metadata=f"private@p='{SECRET}'") == ["carol.txt"]
    # Bob (who may write) sets his own private key on alice's file: alice never sees it.
    uri = dls.uri("alice", "control.txt")
    r = dls.call("PUT", "bob", "/file/metadata", params={"file-uri": uri},
                 json={"metadata": ["private@p=bob-on-alice"]})
    assert r.status_code == 200, r.text
    assert dls.found("bob", metadata="private@p='bob-on-alice'") == ["control.txt"]
    for spelling in ["*='bob-on-alice'", "'bob*'", "private@p='bob*'", "*p='bob*'"]:
        assert dls.found("alice", metadata=spelling) == [], spelling
    detail = dls.search("alice", filename="control.txt").json()["result"][0]
    assert "bob-on-alice" not in str(detail)


def test_free_text_never_finds_private_values(dls: Dls) -> None:
    # Private values are not free text for anyone (their owner finds them by key).
    for user in ("alice", "bob", "carol"):
        assert dls.found(user, text="hush") == [], user
        assert dls.found(user, text="4242") == [], user
    assert dls.found("bob", text="memo") == ["control.txt", "secret.txt"]


def test_metadata_lists_show_private_keys_to_their_owner_only(dls: Dls) -> None:
    def listed(user: str, route: str, params: dict[str, str]) -> dict[str, list]:
        r = dls.call("GET", user, route, params=params)
        assert r.status_code == 200, r.text
        files = r.json()["result"] if route == "/catalog" else r.json()["files"]
        return {f["filename"]: f["metadata"] for f in files}

    for route, params in [("/catalog", {}), ("/catalog/explore", {"user": "alice"})]:
        mine = listed("alice", route, params)
        assert {"name": "private@p", "value": SECRET, "privacy": "private"} in \
            mine["secret.txt"]
        theirs = listed("bob", route, params)
        assert SECRET not in str(theirs), route
        assert [m for m in theirs["secret.txt"] if m["privacy"] == "private"] == []
        assert {m["name"] for m in theirs["secret.txt"]} == \
            {m["name"] for m in theirs["control.txt"]}


@pytest.mark.parametrize("key", ["1@note", "{aid}@p", "private@{aid}@p", "a@b", "@p"])
def test_a_key_with_at_is_refused_on_every_write(dls: Dls, key: str) -> None:
    key = key.format(aid=_id(dls, "alice"))
    r = dls.upload("bob", b"x", "w.txt", metadata=f"{key}=x")
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "metadata[0]"
    assert "'@' is allowed only in the prefix 'private@'" in r.json()["message"]
    uri = dls.uri("alice", "secret.txt")
    for body, field in [({"metadata": [f"{key}=x"]}, "metadata[0]"),
                        ({"remove": [key]}, "remove[0]")]:
        r = dls.call("PUT", "bob", "/file/metadata", params={"file-uri": uri}, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["field"] == field
    # Nothing changed: alice still has her private value, bob wrote nothing.
    assert dls.found("alice", metadata=f"private@p='{SECRET}'") == ["secret.txt"]
    assert "w.txt" not in dls.found("bob")


def test_a_public_key_written_as_a_stored_private_key_is_no_private_key(dls: Dls) -> None:
    # The write side refuses `<id>@key`, so no public row can read as alice's private one.
    aid = _id(dls, "alice")
    r = dls.api.post(f"{DLS}/file", params={"filename": "fake.txt",
                                            "metadata": f"{aid}@q=planted"},
                     content=b"x", headers=dls.headers("bob"))
    assert r.status_code == 400
    assert dls.found("alice", metadata="private@q") == []

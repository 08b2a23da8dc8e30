"""The tenant administrator's API key without a DLS key acts as user `dlsadmin` (the
guide's connection line); no other key gains that, and a key is changed only by its holder."""

from __future__ import annotations

from typing import Any

from dls_helper import DLS, Dls

from pyconnector_server.auth import tenant_for_key


def _tenant(api: Any) -> str:
    t = tenant_for_key(api.app.state.db, api.api_key)
    assert t is not None
    return t.name


def test_the_admin_key_alone_is_dlsadmin_made_on_first_use(api_any: Any) -> None:
    api = api_any  # its key is its tenant's first: role admin
    assert api.get(f"{DLS}/admin/users").json() == []
    r = api.post(f"{DLS}/file", params={"filename": "a.csv", "directory": "csv"},
                 content=b"x\n1\n")
    assert r.status_code == 201, r.text
    uri = f"{_tenant(api)}/dlsadmin/csv/a.csv"
    assert r.json()["uri"] == uri
    assert api.get(f"{DLS}/file", params={"file-uri": uri}).content == b"x\n1\n"
    info = api.get(f"{DLS}/catalog", params={"uri": uri}).json()["result"][0]
    assert info["created-by"] == "dlsadmin"
    assert [(u["user"], u["file-count"]) for u in api.get(f"{DLS}/admin/users").json()] == [
        ("dlsadmin", 1)]
    # Two more calls: still one user.
    assert api.get(f"{DLS}/relation").json() == []
    assert len(api.get(f"{DLS}/admin/users").json()) == 1


def test_a_dlsadmin_made_before_is_the_same_user(api_any: Any) -> None:
    api = api_any
    d = Dls(api, "dlsadmin")
    assert d.upload("dlsadmin", b"mine", "m.csv").status_code == 201
    uri = d.uri("dlsadmin", "m.csv")
    assert api.get(f"{DLS}/file", params={"file-uri": uri}).content == b"mine"
    # And the admin's key with a DLS key is that key's user, not dlsadmin.
    d.add_user("ana")
    r = api.get(f"{DLS}/file", params={"file-uri": uri}, headers=d.headers("ana"))
    assert r.status_code == 404


def test_a_key_for_dlsadmin_reaches_what_the_admin_key_wrote(api: Any) -> None:
    assert api.post(f"{DLS}/file", params={"filename": "a.csv"}, content=b"1").status_code == 201
    # The user exists now: registering it again is a 409; a new key is the way.
    assert api.post(f"{DLS}/admin/users", json={"user": "dlsadmin"}).status_code == 409
    key = api.post(f"{DLS}/admin/users/dlsadmin/key").json()["dlsKey"]
    uri = f"{_tenant(api)}/dlsadmin/a.csv"
    app_key = api.new_key(_tenant(api))  # a further key: role app
    r = api.client.get(f"{DLS}/file", params={"file-uri": uri},
                       headers={"x-api-key": app_key, "x-dls-key": key})
    assert r.status_code == 200 and r.content == b"1"


def test_an_app_key_alone_gets_403_and_no_user(api: Any) -> None:
    app_key = api.new_key(_tenant(api))
    for method, path in (("GET", "/relation"), ("GET", "/catalog"),
                         ("POST", "/file?filename=x.csv"), ("POST", "/user/key")):
        r = api.client.request(method, DLS + path, headers={"x-api-key": app_key},
                               content=b"1" if method == "POST" else None)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["message"].startswith("not.authorized: send your DLS user key")
    assert api.get(f"{DLS}/admin/users").json() == []  # nobody was made


def test_the_admin_key_alone_changes_no_key(api: Any) -> None:
    """POST /user/key needs the caller's own DLS key: the admin alone gets 403 (and no
    dlsadmin is made for it), and the message says how dlsadmin gets a key."""
    r = api.post(f"{DLS}/user/key")
    assert r.status_code == 403
    assert "/admin/users/dlsadmin/key" in r.json()["message"]
    assert "dlsKey" not in r.text
    assert api.get(f"{DLS}/admin/users").json() == []


def test_another_tenants_admin_sees_nothing_of_this_dlsadmin(make_app: Any) -> None:
    api = make_app()
    for name in ("s.csv", "t.csv"):
        assert api.post(f"{DLS}/file", params={"filename": name},
                        content=b"secret").status_code == 201
    r = api.post(f"{DLS}/relation", json={"source": f"{_tenant(api)}/dlsadmin/t.csv",
                                          "target": f"{_tenant(api)}/dlsadmin/s.csv",
                                          "relation": "derivedFrom"})
    assert r.status_code == 201, r.text
    assert len(api.get(f"{DLS}/relation").json()) == 1
    uri = f"{_tenant(api)}/dlsadmin/s.csv"
    other = {"x-api-key": api.new_key("tenant-b")}  # tenant-b's first key: its admin
    c = api.client
    assert c.get(f"{DLS}/file", params={"file-uri": uri}, headers=other).status_code == 404
    assert c.get(f"{DLS}/catalog", params={"uri": uri}, headers=other).json()["result"] == []
    assert c.get(f"{DLS}/relation", headers=other).json() == []
    found = c.get(f"{DLS}/catalog", headers=other)
    assert found.status_code in (200, 404) and "secret" not in found.text
    assert _tenant(api) not in found.text
    assert [u["user"] for u in c.get(f"{DLS}/admin/users", headers=other).json()] == [
        "dlsadmin"]  # its own, made by its calls above

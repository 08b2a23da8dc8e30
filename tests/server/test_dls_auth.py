"""DLS authentication as TCUP does it, users and keys, and tenant isolation."""

from __future__ import annotations

import pytest
from dls_helper import DLS, Dls

ROUTES = [("GET", "/catalog"), ("GET", "/relation"), ("GET", "/share"),
          ("GET", "/catalog/explore"), ("POST", "/file?filename=x"),
          ("GET", "/file?file-uri=t/u/x")]


@pytest.fixture
def dls(api) -> Dls:
    return Dls(api, "alice")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_or_unknown_api_key_is_401(dls: Dls, method: str, path: str) -> None:
    c = dls.api.client
    for headers in ({"x-dls-key": dls.keys["alice"]},
                    {"x-api-key": "nope", "x-dls-key": dls.keys["alice"]}):
        r = c.request(method, DLS + path, headers=headers)
        assert r.status_code == 401, r.text
        assert set(r.json()) >= {"code", "message"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_dls_key_is_403_unknown_is_401(dls: Dls, method: str, path: str) -> None:
    # An application key alone is refused; the tenant administrator's key alone acts as
    # the tenant's user dlsadmin (test_dls_admin_user.py).
    c = dls.api.client
    app_key = {"x-api-key": dls.api.new_key(dls._tenant_name())}
    r = c.request(method, DLS + path, headers=app_key)
    assert r.status_code == 403
    assert r.json()["message"].startswith("not.authorized")
    r = c.request(method, DLS + path, headers={**app_key, "x-dls-key": "0" * 64})
    assert r.status_code == 401
    assert r.json() == {"code": 401, "message": "not.authenticated: unknown DLS key",
                        "key": "not.authenticated"}


def test_a_dls_key_of_another_tenant_is_unknown_here(make_app) -> None:
    api = make_app()
    api.post(f"{DLS}/admin/users", json={"user": "alice"})
    other_key = api.new_key("tenant-b")
    r = api.post(f"{DLS}/admin/users", json={"user": "alice"},
                 headers={"x-api-key": other_key})
    assert r.status_code == 201  # the same user name in another tenant is another user
    alice_a = api.post(f"{DLS}/admin/users/alice/key").json()["dlsKey"]
    r = api.client.get(f"{DLS}/catalog", headers={"x-api-key": other_key, "x-dls-key": alice_a})
    assert r.status_code == 401


def test_users_are_created_listed_rekeyed_and_deleted_by_the_tenant_admin(dls: Dls) -> None:
    api = dls.api
    r = api.post(f"{DLS}/admin/users", json={"user": "alice"})
    assert r.status_code == 409
    users = api.get(f"{DLS}/admin/users").json()
    assert [(u["user"], u["file-count"]) for u in users] == [("alice", 0)]
    old = dls.keys["alice"]
    r = api.post(f"{DLS}/admin/users/alice/key")
    assert r.status_code == 200
    dls.keys["alice"] = r.json()["dlsKey"]
    assert dls.search("alice").status_code == 200
    r = api.get(f"{DLS}/catalog", headers={"x-dls-key": old})
    assert r.status_code == 401
    dls.upload("alice", b"x")
    r = api.delete(f"{DLS}/admin/users/alice")
    assert r.status_code == 409
    dls.delete("alice", dls.uri("alice", "f.csv"))
    assert api.delete(f"{DLS}/admin/users/alice").status_code == 200
    assert api.get(f"{DLS}/admin/users").json() == []
    assert api.post(f"{DLS}/admin/users", json={"user": "../x"}).status_code == 400


def test_another_tenants_file_is_404(make_app) -> None:
    api = make_app()
    a = Dls(api, "alice")
    a.upload("alice", b"secret", "s.csv")
    uri = a.uri("alice", "s.csv")
    other = api.new_key("tenant-b")
    r = api.post(f"{DLS}/admin/users", json={"user": "alice"}, headers={"x-api-key": other})
    b_headers = {"x-api-key": other, "x-dls-key": r.json()["dlsKey"]}
    r = api.client.get(f"{DLS}/file", params={"file-uri": uri}, headers=b_headers)
    assert r.status_code == 404
    assert "secret" not in r.text
    r = api.client.get(f"{DLS}/catalog", headers=b_headers)
    assert r.json()["count"] == 0
    r = api.client.delete(f"{DLS}/file", params={"file-uri": uri}, headers=b_headers)
    assert r.status_code == 404
    assert a.download("alice", uri).content == b"secret"


def test_storage_reports_use_and_quota(make_app) -> None:
    api = make_app(dls_quota_bytes=1000)
    d = Dls(api, "alice")
    d.upload("alice", b"x" * 10)
    assert api.get(f"{DLS}/admin/storage").json() == {
        "type": "LOCAL", "used-bytes": 10, "quota-bytes": 1000, "file-count": 1}


def test_cli_sets_a_tenants_quota_and_makes_users(make_app) -> None:
    from pyconnector_server.auth import tenant_for_key
    from pyconnector_server.cli import main

    api = make_app()
    dls = Dls(api, "alice")
    t = tenant_for_key(api.app.state.db, api.api_key)
    data_dir = str(api.app.state.settings.data_path)
    assert main(["dlsquota", "set", "--data-dir", data_dir, "--tenant", t.name,
                 "--bytes", "5"]) == 0
    assert dls.upload("alice", b"123456").status_code == 409
    assert main(["dlsquota", "set", "--data-dir", data_dir, "--tenant", t.name,
                 "--bytes", "0"]) == 0
    assert dls.upload("alice", b"123456").status_code == 201
    assert main(["dlsuser", "create", "--data-dir", data_dir, "--tenant", t.name,
                 "--user", "alice"]) == 0  # an existing user: a new key, the old one stops
    assert dls.search("alice").status_code == 401

"""Who may administer the Data Lake: the tenant's administrator (an API key with role
``admin``) and nobody else; a DLS user may change only its own key.

Every admin route and the self-rotation route, with every kind of caller, on SQLite and
PostgreSQL; after each call the users and keys of every tenant are compared with what
the call may have changed.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from dls_helper import DLS, Dls

from pyconnector_server.auth import create_api_key, create_jwt_key, tenant_for_key

USERS = ("afriend", "mallory", "idle")  # afriend owns a file; mallory and idle none


# -- the takeover of issue 6, as reported ------------------------------------------------------
def test_a_dls_user_cannot_take_over_another(api_any: Any) -> None:
    """A share-less user asked for afriend's key and read afriend's files."""
    api = api_any
    d = Dls(api, "afriend", "mallory")
    assert d.upload("afriend", b"afriend's secret", "s.csv").status_code == 201
    uri = d.uri("afriend", "s.csv")
    # The key mallory's application uses: another key of the same tenant, as
    # `pyconnector apikey create --tenant T` makes it for an existing tenant.
    app_key = api.new_key(tenant_for_key(api.app.state.db, api.api_key).name)
    mallory = {"x-api-key": app_key, "x-dls-key": d.keys["mallory"]}
    r = api.client.post(f"{DLS}/admin/users/afriend/key", headers=mallory)
    assert r.status_code == 403, r.text
    assert r.json()["message"].startswith("not.authorized: ")
    assert "tenant administrator's API key" in r.json()["message"]
    assert "dlsKey" not in r.text
    r = api.client.get(f"{DLS}/file", params={"file-uri": uri}, headers=mallory)
    assert r.status_code == 404
    assert d.download("afriend", uri).content == b"afriend's secret"
    # Nor list the users, nor delete one.
    assert api.client.get(f"{DLS}/admin/users", headers=mallory).status_code == 403
    assert api.client.delete(f"{DLS}/admin/users/mallory", headers=mallory).status_code == 403
    assert [u["user"] for u in api.get(f"{DLS}/admin/users").json()] == ["afriend", "mallory"]


# -- the matrix --------------------------------------------------------------------------------
@dataclass
class Org:
    """A tenant of the shared app: its keys and DLS users (name -> current key)."""

    name: str
    admin: str
    app: str
    users: dict[str, str] = field(default_factory=dict)
    jwt_secret: str | None = None

    def token(self, **claims: Any) -> str:
        assert self.jwt_secret
        now = int(time.time())
        return jwt.encode({"iat": now, "exp": now + 300, **claims}, self.jwt_secret,
                          algorithm="HS256")


def _org(api: Any, label: str, users: tuple[str, ...] = USERS, jwt_mode: bool = False) -> Org:
    db = api.app.state.db
    name = f"{label}-{uuid.uuid4().hex[:8]}"
    org = Org(name, create_api_key(db, name, role="admin"), create_api_key(db, name, role="app"))
    for user in users:
        r = api.client.post(f"{DLS}/admin/users", json={"user": user},
                            headers={"x-api-key": org.admin})
        assert r.status_code == 201, r.text
        org.users[user] = r.json()["dlsKey"]
    if "afriend" in users:
        r = api.client.post(f"{DLS}/file", params={"filename": "s.csv"}, content=b"secret",
                            headers={"x-api-key": org.app, "x-dls-key": org.users["afriend"]})
        assert r.status_code == 201, r.text
    if jwt_mode:
        org.jwt_secret = create_jwt_key(db, name)
    return org


@dataclass
class World:
    api: Any
    victim: Org  # API-key mode: the tenant the callers aim at
    other: Org  # another tenant, API-key mode, one user of its own
    jwt: Org  # a tenant in JWT mode, with the victim's kind of users

    def orgs(self) -> dict[str, Org]:
        return {"victim": self.victim, "other": self.other, "jwt": self.jwt}

    def snapshot(self) -> dict[str, dict[str, bool]]:
        """Per tenant: each DLS user in the store, and whether the key we hold works."""
        store, db = self.api.app.state.dls, self.api.app.state.db
        out = {}
        for label, org in self.orgs().items():
            t = tenant_for_key(db, org.admin)
            names = [u["user"] for u in store.list_users(t)]
            out[label] = {n: n in org.users and store.user_for_key(t, org.users[n]) is not None
                          for n in names}
        return out


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               app_opener: Any) -> Iterator[Any]:
    db = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with app_opener(tmp_path_factory.mktemp("dls-authority"), db) as api:
        yield api


@pytest.fixture
def world(shared_app: Any) -> World:
    """Fresh tenants on the module's app (one per store): nothing leaks between tests."""
    return World(shared_app, _org(shared_app, "victim"),
                 _org(shared_app, "other", users=("stranger",)),
                 _org(shared_app, "jwt", jwt_mode=True))


# Routes: id -> (method, path, JSON body).
ROUTES: dict[str, tuple[str, str, Any]] = {
    "create user": ("POST", "/admin/users", {"user": "newbie"}),
    "list users": ("GET", "/admin/users", None),
    "new key for a user": ("POST", "/admin/users/afriend/key", None),
    "delete user": ("DELETE", "/admin/users/idle", None),
    "storage": ("GET", "/admin/storage", None),
    "storage type": ("GET", "/admin/storage/type", None),
    "own new key": ("POST", "/user/key", None),
}


@dataclass(frozen=True)
class Caller:
    """Who calls: their headers, and, for the admin routes, what they may do.

    ``admin_as``: the tenant whose administrator this caller is (None: 401 or 403 on the
    admin routes, as ``admin_refusal`` says). ``dls_user``: (tenant, user) whose own key
    POST /user/key changes (None: ``self_refusal``).
    """

    headers: Callable[[World], dict[str, str]]
    admin_as: str | None = None
    admin_refusal: int = 403
    dls_user: tuple[str, str] | None = None
    self_refusal: int = 403


def _h(api_key: Callable[[World], str], dls: Callable[[World], str] | None = None,
       token: Callable[[World], str] | None = None) -> Callable[[World], dict[str, str]]:
    def headers(w: World) -> dict[str, str]:
        out = {"x-api-key": api_key(w)}
        if dls:
            out["x-dls-key"] = dls(w)
        if token:
            out["authorization"] = f"Bearer {token(w)}"
        return out
    return headers


def _forever(w: World) -> str:
    """A JWT signed with the right key that expires in the year 9999 (issue 6, item 13)."""
    return w.jwt.token(exp=253402300799)


CALLERS: dict[str, Caller] = {
    "no key": Caller(lambda w: {}, admin_refusal=401, self_refusal=401),
    "unknown key": Caller(lambda w: {"x-api-key": secrets.token_hex(32)},
                          admin_refusal=401, self_refusal=401),
    "admin": Caller(_h(lambda w: w.victim.admin), admin_as="victim"),
    "admin + a user's DLS key": Caller(_h(lambda w: w.victim.admin,
                                          lambda w: w.victim.users["mallory"]),
                                       admin_as="victim", dls_user=("victim", "mallory")),
    "app": Caller(_h(lambda w: w.victim.app)),
    "app + a user's DLS key": Caller(_h(lambda w: w.victim.app,
                                        lambda w: w.victim.users["mallory"]),
                                     dls_user=("victim", "mallory")),
    "app + the named user's DLS key": Caller(_h(lambda w: w.victim.app,
                                                lambda w: w.victim.users["afriend"]),
                                             dls_user=("victim", "afriend")),
    "app + another tenant's user's key": Caller(_h(lambda w: w.victim.app,
                                                   lambda w: w.other.users["stranger"]),
                                                self_refusal=401),
    "another tenant's admin": Caller(_h(lambda w: w.other.admin), admin_as="other"),
    "another tenant's admin + a user's DLS key": Caller(
        _h(lambda w: w.other.admin, lambda w: w.victim.users["mallory"]), admin_as="other",
        self_refusal=401),
    "JWT tenant's admin, no token": Caller(_h(lambda w: w.jwt.admin), admin_refusal=401,
                                           self_refusal=401),
    "JWT tenant's admin, token of another key": Caller(
        _h(lambda w: w.jwt.admin, token=lambda w: jwt.encode(
            {"iat": int(time.time()), "exp": int(time.time()) + 300},
            secrets.token_urlsafe(32), algorithm="HS256")),
        admin_refusal=401, self_refusal=401),
    "JWT tenant's admin, token valid until 9999": Caller(
        _h(lambda w: w.jwt.admin, token=_forever), admin_refusal=401, self_refusal=401),
    "JWT tenant's admin, valid token": Caller(_h(lambda w: w.jwt.admin,
                                                token=lambda w: w.jwt.token()),
                                             admin_as="jwt"),
    "JWT tenant's app, valid token": Caller(_h(lambda w: w.jwt.app,
                                              token=lambda w: w.jwt.token())),
    "JWT tenant's app, valid token + a user's DLS key": Caller(
        _h(lambda w: w.jwt.app, lambda w: w.jwt.users["mallory"], lambda w: w.jwt.token()),
        dls_user=("jwt", "mallory")),
}


def test_the_route_list_covers_every_admin_and_key_route(shared_app: Any) -> None:
    paths = shared_app.app.openapi()["paths"]
    served = {(m.upper(), p) for p, ops in paths.items() for m in ops
              if p.startswith((f"{DLS}/admin", f"{DLS}/user"))}
    listed = {(m, DLS + p.replace("/afriend/", "/{name}/").replace("/idle", "/{name}"))
              for m, p, _ in ROUTES.values()}
    assert served == listed


def _expected(route: str, caller: Caller, w: World) -> tuple[int, str | None]:
    """(HTTP status, the tenant whose state the call changes or reads, if any)."""
    if route == "own new key":
        if caller.dls_user is None:
            return caller.self_refusal, None
        return 200, caller.dls_user[0]
    if caller.admin_as is None:
        return caller.admin_refusal, None
    mine = caller.admin_as == "victim" or caller.admin_as == "jwt"  # they have afriend, idle
    status = {"create user": 201, "list users": 200, "storage": 200, "storage type": 200,
              "new key for a user": 200 if mine else 404,
              "delete user": 200 if mine else 404}[route]
    return status, caller.admin_as


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("who", list(CALLERS))
def test_who_may_call_the_admin_and_key_routes(world: World, route: str, who: str) -> None:
    caller = CALLERS[who]
    method, path, body = ROUTES[route]
    before = world.snapshot()
    status, acting = _expected(route, caller, world)
    r = world.api.client.request(method, DLS + path, headers=caller.headers(world),
                                 **({"json": body} if body is not None else {}))
    assert r.status_code == status, (who, route, r.text)
    if status >= 400:
        answer = r.json()
        assert {"code", "message", "key"} <= set(answer) <= {"code", "message", "field", "key"}, answer
        assert answer["code"] == status, answer
        if status == 403:
            assert answer["message"].startswith("not.authorized: "), answer
            if route != "own new key":
                assert "tenant administrator's API key" in answer["message"], answer
        for org in world.orgs().values():  # names no one else's users
            for user in org.users:
                assert user not in r.text or (status == 404 and user in path), r.text
        assert "dlsKey" not in r.text
        assert world.snapshot() == before, (who, route)
        return

    # Allowed: exactly the change the call asks for, in the caller's own tenant.
    org = world.orgs()[acting]
    expect = {label: dict(state) for label, state in before.items()}
    if route == "create user":
        assert r.json()["dlsKey"]
        org.users["newbie"] = r.json()["dlsKey"]
        expect[acting]["newbie"] = True
    elif route == "list users":
        assert [u["user"] for u in r.json()] == sorted(before[acting])
    elif route == "new key for a user":
        old = org.users["afriend"]
        org.users["afriend"] = r.json()["dlsKey"]
        assert r.json()["user"] == "afriend" and org.users["afriend"] != old
        # The old key stops; the new one works, and only in this tenant.
        headers = {"x-api-key": org.app, "x-dls-key": old}
        if org.jwt_secret:
            headers["authorization"] = f"Bearer {org.token()}"
        assert world.api.client.get(f"{DLS}/catalog", headers=headers).status_code == 401
    elif route == "delete user":
        del expect[acting]["idle"]
    elif route == "storage":
        assert r.json()["file-count"] == (0 if acting == "other" else 1)
    elif route == "storage type":
        assert r.json()["type"] == "LOCAL"
    elif route == "own new key":
        assert caller.dls_user is not None
        user = caller.dls_user[1]
        assert r.json()["user"] == user and r.json()["code"] == 200
        old, org.users[user] = org.users[user], r.json()["dlsKey"]
        t = tenant_for_key(world.api.app.state.db, org.admin)
        assert world.api.app.state.dls.user_for_key(t, old) is None  # stopped at once
    # Every key we now hold works (the snapshot tries them); nothing else changed.
    assert world.snapshot() == expect, (who, route)


def test_a_dls_user_rotates_only_its_own_key(world: World) -> None:
    """Two users of one tenant rotate their keys; each change touches that user only,
    and the old key stops at once."""
    api, v = world.api, world.victim
    before = world.snapshot()
    for user in ("mallory", "afriend"):
        old = v.users[user]
        headers = {"x-api-key": v.app, "x-dls-key": old}
        r = api.client.post(f"{DLS}/user/key", headers=headers)
        assert r.status_code == 200 and r.json()["user"] == user
        v.users[user] = r.json()["dlsKey"]
        assert api.client.get(f"{DLS}/catalog", headers=headers).status_code == 401
        assert api.client.post(f"{DLS}/user/key", headers=headers).status_code == 401
        r = api.client.get(f"{DLS}/catalog", headers={"x-api-key": v.app,
                                                      "x-dls-key": v.users[user]})
        assert r.status_code == 200
    assert world.snapshot() == before  # every key we now hold works, nobody else changed
    uri = f"{v.name}/afriend/s.csv"
    r = api.client.get(f"{DLS}/file", params={"file-uri": uri},
                       headers={"x-api-key": v.app, "x-dls-key": v.users["afriend"]})
    assert r.content == b"secret"


# -- through the connector, against real servers ---------------------------------------------
@pytest.mark.e2e
def test_connector_admin_and_own_key_calls_against_a_real_server(any_server: Any,
                                                                  tmp_path: Path) -> None:
    import pyconnector

    tenant = f"t-{uuid.uuid4().hex[:8]}"
    admin_key = any_server.new_key(tenant)  # the first key of a new tenant: admin
    app_key = any_server.new_key(tenant)  # a further key: app
    with pyconnector.connectors(api_key=admin_key, URL=any_server.url) as admin:
        dls = admin.Datalake()
        keys = {u: dls.createUser(u)["dlsKey"] for u in ("afriend", "mallory")}
        assert [u["user"] for u in dls.getUsers()] == ["afriend", "mallory"]
        assert dls.getStorage()["file-count"] == 0
    with pyconnector.connectors(api_key=app_key, URL=any_server.url,
                                dls_key=keys["afriend"]) as conn:
        (tmp_path / "s.csv").write_bytes(b"secret")
        conn.Datalake().uploadFile(tmp_path / "s.csv")
    with pyconnector.connectors(api_key=app_key, URL=any_server.url,
                                dls_key=keys["mallory"]) as conn:
        mallory = conn.Datalake()
        for call in (lambda: mallory.newUserKey("afriend"), mallory.getUsers,
                     lambda: mallory.createUser("x"), lambda: mallory.deleteUser("mallory"),
                     mallory.getStorage):
            with pytest.raises(pyconnector.AuthenticationError) as err:
                call()
            assert err.value.status == 403 and "not.authorized" in err.value.message
        with pytest.raises(pyconnector.NotFoundError):
            mallory.getFile(f"{tenant}/afriend/s.csv", responseType="bytes")
        old = mallory.dls_key
        answer = mallory.newKey()
        assert answer["user"] == "mallory" and mallory.dls_key == answer["dlsKey"] != old
        assert mallory.searchFile()["count"] == 0  # goes on with the new key
        with pytest.raises(pyconnector.AuthenticationError) as err:
            conn.Datalake(dlsKey=old).searchFile()
        assert err.value.status == 401
    with pyconnector.connectors(api_key=app_key, URL=any_server.url,
                                dls_key=keys["afriend"]) as conn:
        assert conn.Datalake().getFile(f"{tenant}/afriend/s.csv",
                                       responseType="bytes") == b"secret"

"""API keys: roles, `pyconnector apikey create|list|revoke`, and what a revoked key gets."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pyconnector_server.auth import hash_key, key_for
from pyconnector_server.cli import main
from pyconnector_server.db import Database, api_key, tenant

SOS = "/api/sos/v2.0"
DLS = "/api/dls"
LINE = re.compile(r"^(\d+)\t([0-9a-f]{8}|-)\t(admin|app)\t(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$")


class Cli:
    """``pyconnector …`` in-process against an app's store; (exit code, stdout, stderr)."""

    def __init__(self, api: Any, capsys: pytest.CaptureFixture[str]) -> None:
        self.api, self.capsys = api, capsys
        settings = api.app.state.settings
        self.store = ["--data-dir", str(settings.data_path)] + (
            ["--db", settings.db] if settings.db else [])

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main([*args, *self.store])
        out = self.capsys.readouterr()
        return code, out.out, out.err

    def create(self, tenant: str, *extra: str) -> str:
        code, out, err = self("apikey", "create", "--tenant", tenant, *extra)
        assert code == 0 and len(out.splitlines()) == 1, (out, err)
        key = out.strip()
        assert re.fullmatch(r"[0-9a-f]{64}", key)
        return key

    def list(self, tenant: str) -> list[tuple[int, str, str, str]]:
        code, out, err = self("apikey", "list", "--tenant", tenant)
        assert code == 0 and err == "", err
        rows = []
        for line in out.splitlines():
            m = LINE.match(line)
            assert m, line
            rows.append((int(m[1]), m[2], m[3], m[4]))
        return rows

    def revoke(self, tenant: str, ref: str, *extra: str) -> tuple[int, str, str]:
        return self("apikey", "revoke", "--tenant", tenant, ref, *extra)


@pytest.fixture
def cli(api_any: Any, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(api_any, capsys)


def _name() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


def _role(api: Any, key: str) -> str | None:
    k = key_for(api.app.state.db, key)
    return k.role if k else None


def _sos(api: Any, key: str) -> int:
    return api.client.get(f"{SOS}/count", headers={"x-api-key": key}).status_code


def _dls_admin(api: Any, key: str) -> int:
    return api.client.get(f"{DLS}/admin/users", headers={"x-api-key": key}).status_code


# -- create: roles -----------------------------------------------------------------------------
def test_the_first_key_of_a_tenant_is_admin_further_keys_are_app(cli: Cli) -> None:
    api, name = cli.api, _name()
    code, first, err = cli("apikey", "create", "--tenant", name)
    assert code == 0 and f"created tenant {name!r}: new admin key {first[:8]}" in err
    first = first.strip()
    second = cli.create(name)
    third = cli.create(name, "--role", "admin")
    fourth = cli.create(name, "--role", "app")
    assert [_role(api, k) for k in (first, second, third, fourth)] == [
        "admin", "app", "admin", "app"]
    # Every role does the tenant's ordinary work; only admin keys reach the admin routes.
    assert [_sos(api, k) for k in (first, second, third, fourth)] == [200] * 4
    assert [_dls_admin(api, k) for k in (first, second, third, fourth)] == [
        200, 403, 200, 403]


def test_a_tenant_without_an_admin_key_gets_one_by_default(cli: Cli) -> None:
    """A tenant made by another command (or by an app key) has no administrator yet: the
    next default key is its administrator's."""
    api, name = cli.api, _name()
    code, secret, _ = cli("jwtkey", "create", "--tenant", name)  # creates the tenant, no key
    assert code == 0 and secret.strip()
    assert _role(api, cli.create(name, "--role", "app")) == "app"
    assert _role(api, cli.create(name)) == "admin"
    assert _role(api, cli.create(name)) == "app"


def test_an_unknown_role_is_refused(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli("apikey", "create", "--tenant", _name(), "--role", "root")
    assert exit_.value.code == 2


def test_the_key_is_stored_hashed_with_its_prefix_only(cli: Cli) -> None:
    name = _name()
    key = cli.create(name)
    with cli.api.app.state.db.read() as conn:
        row = conn.execute(sa.select(api_key).where(api_key.c.key_hash == hash_key(key))).one()
    assert row.prefix == key[:8] and row.role == "admin"
    assert key not in str(dict(row._mapping))


# -- list ----------------------------------------------------------------------------------------
def test_list_shows_id_prefix_role_and_time_never_the_key(cli: Cli) -> None:
    name, other = _name(), _name()
    keys = [cli.create(name), cli.create(name), cli.create(name, "--role", "admin")]
    cli.create(other)
    code, out, _ = cli("apikey", "list", "--tenant", name)
    for key in keys:
        assert key not in out and hash_key(key) not in out
    rows = cli.list(name)
    assert [(prefix, role) for _, prefix, role, _ in rows] == [
        (keys[0][:8], "admin"), (keys[1][:8], "app"), (keys[2][:8], "admin")]
    ids = [i for i, *_ in rows]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert len(cli.list(other)) == 1  # only the named tenant's keys


def test_list_of_an_unknown_tenant_fails_and_creates_nothing(cli: Cli) -> None:
    name = _name()
    code, out, err = cli("apikey", "list", "--tenant", name)
    assert code == 1 and out == "" and f"no tenant {name!r}" in err
    with cli.api.app.state.db.read() as conn:
        assert conn.execute(sa.select(tenant).where(tenant.c.name == name)).first() is None


# -- revoke ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["id", "prefix", "short prefix", "key"])
def test_a_revoked_key_gets_401_at_once(cli: Cli, by: str) -> None:
    api, name = cli.api, _name()
    admin = cli.create(name)
    app = cli.create(name)
    r = api.client.post(f"{DLS}/admin/users", json={"user": "ana"}, headers={"x-api-key": admin})
    dls = {"x-api-key": app, "x-dls-key": r.json()["dlsKey"]}
    assert _sos(api, app) == 200
    assert api.client.get(f"{DLS}/catalog", headers=dls).status_code == 200
    key_id = next(i for i, prefix, *_ in cli.list(name) if prefix == app[:8])
    ref = {"id": str(key_id), "prefix": app[:8], "short prefix": app[:4], "key": app}[by]
    code, out, err = cli.revoke(name, ref)
    assert code == 0, err
    assert out.strip() == f"revoked key {key_id} ({app[:8]}, app) of tenant {name!r}"
    # The same app, no restart: every route family refuses the key on the next request.
    for r in (api.client.get(f"{SOS}/count", headers={"x-api-key": app}),
              api.client.get(f"{DLS}/catalog", headers=dls)):
        assert r.status_code == 401 and r.json()["message"] == "unknown API key"
    assert _sos(api, admin) == 200
    assert [p for _, p, *_ in cli.list(name)] == [admin[:8]]
    assert cli.revoke(name, ref)[0] == 1  # gone


def test_revoke_names_one_key_of_the_named_tenant_only(cli: Cli) -> None:
    api, name, other = cli.api, _name(), _name()
    mine = [cli.create(name), cli.create(name)]
    theirs = cli.create(other, "--role", "admin")
    their_id = cli.list(other)[0][0]
    # Another tenant's key, by id, prefix or the key itself: not found here, still works.
    for ref in (str(their_id), theirs[:8], theirs):
        code, out, err = cli.revoke(name, ref)
        assert code == 1 and out == "" and "no key of tenant" in err, err
    assert _sos(api, theirs) == 200
    # Too short a prefix is not a reference.
    code, _, err = cli.revoke(name, mine[1][:3])
    assert code == 1 and "at least 4 characters" in err
    # An unknown tenant is refused and not created.
    code, _, err = cli.revoke(_name(), "1")
    assert code == 1 and "no tenant" in err
    assert [_sos(api, k) for k in mine] == [200, 200]


def test_an_ambiguous_reference_is_refused(cli: Cli) -> None:
    api, name = cli.api, _name()
    keys = [cli.create(name, "--role", "app") for _ in range(3)]
    # Two prefixes that start alike (1 in 65536 for 4 characters: made so here).
    with api.app.state.db.write() as conn:
        conn.execute(sa.update(api_key).where(api_key.c.key_hash.in_(
            [hash_key(keys[0]), hash_key(keys[1])])).values(prefix="abcd0000"))
    code, _, err = cli.revoke(name, "abcd")
    assert code == 1 and "matches several keys" in err and "whole prefix" in err
    # A reference that is one key's id and another's prefix.
    ids = [i for i, *_ in cli.list(name)]
    with api.app.state.db.write() as conn:
        conn.execute(sa.update(api_key).where(api_key.c.key_hash == hash_key(keys[2]))
                     .values(prefix=f"{ids[0]:04d}0000"[:8]))
    code, _, err = cli.revoke(name, f"{ids[0]:04d}")
    assert code == 1 and "matches several keys" in err
    assert all(_sos(api, k) == 200 for k in keys)
    assert cli.revoke(name, "abcd0000")[0] == 1  # still two
    assert cli.revoke(name, f"{ids[0]:04d}0000"[:8])[0] == 0  # the whole prefix: one key
    assert _sos(api, keys[2]) == 401 and _sos(api, keys[0]) == 200


def test_the_last_admin_key_is_kept_unless_forced(cli: Cli) -> None:
    api, name = cli.api, _name()
    admin, app = cli.create(name), cli.create(name)
    admin_id = cli.list(name)[0][0]
    code, out, err = cli.revoke(name, str(admin_id))
    assert code == 1 and out == "" and "last admin key" in err and "--force" in err
    assert _dls_admin(api, admin) == 200
    # With a second admin key, the first can go.
    second = cli.create(name, "--role", "admin")
    assert cli.revoke(name, admin[:8])[0] == 0
    assert _sos(api, admin) == 401
    # The last one goes only with --force; then the tenant has no administrator…
    assert cli.revoke(name, second[:8])[0] == 1
    code, out, _ = cli.revoke(name, second[:8], "--force")
    assert code == 0 and "admin" in out
    assert _sos(api, second) == 401 and _sos(api, app) == 200
    assert _dls_admin(api, app) == 403
    # …until the server's operator makes one: the default role of a tenant without one.
    new = cli.create(name)
    assert _role(api, new) == "admin" and _dls_admin(api, new) == 200


def test_keys_made_before_roles_stay_admin(db_url: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           request: pytest.FixtureRequest) -> None:
    """A store at revision 0001 (no roles): its keys become admin keys without a prefix,
    listed with '-' and revocable by id."""
    from alembic import command
    from alembic.config import Config

    import pyconnector_server.db as dbmod
    from pyconnector_server.settings import Settings

    url = db_url
    if db_url:  # PostgreSQL: a schema of its own, since the shared one is at head
        import psycopg

        schema = f"pyc_old_{uuid.uuid4().hex[:8]}"
        base = db_url.split("?")[0]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')

        def drop() -> None:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

        request.addfinalizer(drop)
        url = f"{base}?options=-csearch_path%3D{schema}"
    settings = Settings.load({"data_dir": str(tmp_path), "db": url}, environ={})
    db = Database(settings.database_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(Path(dbmod.__file__).parent / "migrations"))
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            old_key = "ab" * 32
            tid = conn.execute(sa.text("INSERT INTO tenant (name, created_ms) VALUES "
                                       "('old', 1) RETURNING id")).scalar_one()
            conn.execute(sa.text("INSERT INTO api_key (tenant_id, key_hash, created_ms) "
                                 "VALUES (:t, :h, 1000)"), {"t": tid, "h": hash_key(old_key)})
        db.migrate()
        k = key_for(db, old_key)
        assert k is not None and k.role == "admin" and k.prefix == ""
    finally:
        db.close()
    store = ["--data-dir", str(tmp_path)] + (["--db", url] if url else [])
    capsys.readouterr()
    assert main(["apikey", "list", "--tenant", "old", *store]) == 0
    line = capsys.readouterr().out.strip()
    assert LINE.match(line) and line.split("\t")[1:3] == ["-", "admin"], line
    assert main(["apikey", "revoke", "--tenant", "old", line.split("\t")[0], "--force",
                 *store]) == 0
    assert capsys.readouterr().out.strip() == (
        f"revoked key {line.split(chr(9))[0]} (no prefix, admin) of tenant 'old'")
    assert main(["apikey", "list", "--tenant", "old", *store]) == 0
    assert capsys.readouterr().out == ""


# -- against real servers ----------------------------------------------------------------------
@pytest.mark.e2e
def test_revoke_against_a_running_server(any_server: Any) -> None:
    """The CLI revokes while the server runs; its next request with the key is 401."""
    import httpx

    name = _name()
    admin = any_server.new_key(name)
    app = any_server.new_key(name)
    listing = any_server.cli("apikey", "list", "--tenant", name).splitlines()
    assert [line.split("\t")[1:3] for line in listing] == [[admin[:8], "admin"],
                                                          [app[:8], "app"]]
    with httpx.Client(base_url=any_server.url, timeout=30) as http:
        assert http.get(f"{SOS}/count", headers={"x-api-key": app}).status_code == 200
        r = http.get(f"{DLS}/admin/users", headers={"x-api-key": app})
        assert r.status_code == 403 and r.json()["message"].startswith("not.authorized")
        out = any_server.cli("apikey", "revoke", "--tenant", name, app[:8])
        assert out.startswith("revoked key ")
        r = http.get(f"{SOS}/count", headers={"x-api-key": app})
        assert r.status_code == 401 and r.json()["message"] == "unknown API key"
        assert http.get(f"{SOS}/count", headers={"x-api-key": admin}).status_code == 200

"""The service registry: a service is its own package plus one registration line.

A tiny extra service (a router, something opened and closed, a CLI command) is served,
opened, closed and run by the core's loops alone; a service failing to open closes what
was opened before it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from starlette.datastructures import State
from starlette.testclient import TestClient

from pyconnector_server import cli, deps
from pyconnector_server.app import create_app
from pyconnector_server.auth import Tenant, create_api_key
from pyconnector_server.db import Database
from pyconnector_server.services import REGISTERED, Service, load, registered
from pyconnector_server.settings import Settings


class Greeter:
    """The tiny service's resource: something opened in the lifespan and closed after."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.closed = False
        events.append("greeter opened")

    def greet(self, t: Tenant) -> dict[str, Any]:
        return {"hello": t.name, "closed": self.closed}

    def close(self) -> None:
        self.closed = True
        self.events.append("greeter closed")


def greeter_service(events: list[str]) -> Service:
    """A whole service in a few lines: what a new service's package declares."""
    router = APIRouter(prefix="/api/greet")
    store = deps.state("greeter", Greeter)

    @router.get("/hello")
    async def hello(t: Tenant = deps.Auth, g: Greeter = deps.Depends(store)) -> Any:
        return await deps.call(g.greet, t)

    @asynccontextmanager
    async def open_greeter(state: State) -> AsyncIterator[None]:
        assert isinstance(state.db, Database)  # the core opened first
        state.greeter = Greeter(events)
        try:
            yield
        finally:
            state.greeter.close()

    def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        p = sub.add_parser("greet", help="greet a tenant")
        say = p.add_subparsers(dest="action", required=True).add_parser("say")
        say.add_argument("--tenant", required=True)
        say.add_argument("--loud", action="store_true")
        cli.add_settings(say, only=("data_dir", "db"))

    def run_command(db: Database, command: str, args: dict[str, Any]) -> int:
        assert isinstance(db, Database)
        text = f"{command} {args['action']}: hello {args['tenant']}"
        print(text.upper() if args["loud"] else text)
        return 3  # the exit status is the service's to choose

    return Service(name="greeter", routers=[router], tables="pyconnector_server.db",
                   open=open_greeter, commands=("greet",), add_commands=add_commands,
                   run_command=run_command)


def _settings(tmp_path: Path) -> Settings:
    return Settings.load({"data_dir": str(tmp_path / "data")}, environ={})


def test_the_registry_lists_each_service_in_one_line() -> None:
    assert len(REGISTERED) == 5
    assert [s.name for s in registered()] == ["sos", "dls", "routing", "tasks", "workflow"]
    dls = registered()[1]
    assert dls.commands == ("dlsuser", "dlsquota")
    assert {r.prefix for s in registered() for r in s.routers} == {
        "/api/sos/v2.0", "/api/dls", "/MessageRouting/v2.0", "/TaskService/v1.0",
        "/TaskService/v1.0/worker", "/WorkflowService/v1.0"}


def test_a_module_without_a_service_is_refused() -> None:
    with pytest.raises(TypeError, match="pyconnector_server.deps is registered as a service "
                       "but its SERVICE is NoneType, not a pyconnector_server.services.Service"):
        load("pyconnector_server.deps")


def test_an_extra_service_is_served_opened_and_closed(tmp_path: Path) -> None:
    events: list[str] = []
    app = create_app(_settings(tmp_path), [*registered(), greeter_service(events)])
    assert events == []  # nothing opened at build time
    with TestClient(app) as client:
        assert events == ["greeter opened"]
        key = create_api_key(app.state.db, "acme")
        r = client.get("/api/greet/hello", headers={"x-api-key": key})
        assert r.status_code == 200, r.text
        assert r.json() == {"hello": "acme", "closed": False}
        assert client.get("/api/greet/hello").status_code == 401  # the shared auth
        # The registered services are served beside it.
        assert client.get("/api/sos/v2.0/count", headers={"x-api-key": key}).status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
        assert "/api/greet/hello" in paths
    assert events == ["greeter opened", "greeter closed"]
    assert app.state.greeter.closed


def test_the_extra_service_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    services = [*registered(), greeter_service([])]
    parser = cli.build_parser(services)
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(commands) == ["serve", "worker", "apikey", "jwtkey", "dlsuser", "dlsquota",
                              "greet"]
    code = cli.main(["greet", "say", "--tenant", "acme", "--loud", "--data-dir",
                     str(tmp_path)], services)
    assert code == 3
    assert capsys.readouterr().out == "GREET SAY: HELLO ACME\n"
    # Without it registered, the command does not exist.
    with pytest.raises(SystemExit):
        cli.main(["greet", "say", "--tenant", "acme", "--data-dir", str(tmp_path)])


def test_a_dls_command_still_runs_through_the_registry(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert cli.main(["dlsquota", "set", "--tenant", "acme", "--bytes", "10",
                     "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "tenant 'acme': data lake quota 10\n"


def test_a_service_failing_to_open_closes_those_opened_before(tmp_path: Path) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def broken(state: State) -> AsyncIterator[None]:
        events.append("broken opening")
        raise RuntimeError("the broker is down")
        yield  # pragma: no cover

    failing = Service(name="broken", routers=[], tables="pyconnector_server.db", open=broken)
    app = create_app(_settings(tmp_path), [greeter_service(events), failing])
    with pytest.raises(RuntimeError, match="the broker is down"), TestClient(app):
        pytest.fail("the app must not start")  # pragma: no cover
    assert events == ["greeter opened", "broken opening", "greeter closed"]


def test_a_failure_after_the_registered_services_closes_them(tmp_path: Path) -> None:
    """The DLS's sweeper and blob store are closed too when a later service fails."""
    closed: list[str] = []

    @asynccontextmanager
    async def broken(state: State) -> AsyncIterator[None]:
        blobs = state.dls.blobs
        close = blobs.close

        def spy() -> None:
            closed.append("blobs")
            close()

        blobs.close = spy
        raise RuntimeError("late failure")
        yield  # pragma: no cover

    failing = Service(name="broken", routers=[], tables="pyconnector_server.db", open=broken)
    app = create_app(_settings(tmp_path), [*registered(), failing])
    with pytest.raises(RuntimeError, match="late failure"), TestClient(app):
        pytest.fail("the app must not start")  # pragma: no cover
    assert closed == ["blobs"]


def test_load_all_imports_each_service_tables() -> None:
    """In a fresh interpreter: the core's tables only, until load_all imports the rest."""
    code = ("from pyconnector_server.db import metadata\n"
            "from pyconnector_server.models import load_all\n"
            "before = set(metadata.tables)\n"
            "load_all()\n"
            "print(sorted(before), sorted(set(metadata.tables) - before))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    before, added = out.split("] [")
    assert "sos_" not in before and "dls_" not in before
    assert "'sos_feature'" in added and "'dls_file'" in added


def test_each_service_keeps_its_migrations_beside_its_tables() -> None:
    """Revisions live in the core's folder and in each service's ``migrations`` folder;
    they form one chain (one head), and a service's revisions touch only its own tables."""
    import re

    import sqlalchemy as sa
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from pyconnector_server.models import load_all
    from pyconnector_server.services import migration_dirs

    dirs = migration_dirs()
    assert dirs[0].parts[-2:] == ("migrations", "versions")
    owners = {d.parent.name.replace("datalake", "dls"): d for d in dirs[1:]}
    assert set(owners) >= {"sos", "routing", "tasks", "workflow"}, owners
    config = Config()
    config.set_main_option("script_location", str(dirs[0].parent))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", ":".join(map(str, dirs)))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert {Path(r.path).parent for r in revisions} == set(dirs)
    load_all()
    for service in registered():
        tables_module = __import__(service.tables, fromlist=["_"])
        own = {t.name for t in vars(tables_module).values() if isinstance(t, sa.Table)}
        folder = owners.get(service.name)
        for r in revisions:
            if Path(r.path).parent != folder:
                continue
            touched = set(re.findall(r"op\.(?:create_table|drop_table|batch_alter_table|"
                                     r"add_column)\(\s*'(\w+)'",
                                     Path(r.path).read_text()))
            assert touched and touched <= own, (r.path, touched - own)

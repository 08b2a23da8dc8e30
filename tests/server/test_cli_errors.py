"""The `pyconnector` command's set-up errors: one line on stderr, exit status 2, no
traceback, saying what is wrong and what to do. Each runs the real installed command."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

COMMAND = str(Path(sys.executable).with_name("pyconnector"))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYCONNECTOR_")}
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=120,
                          env={**environ, **(env or {})})


def one_line_error(r: subprocess.CompletedProcess[str], command: str) -> str:
    """The single stderr line of a failed command (after asserting it is one)."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"pyconnector {command}: error: "), lines[0]
    return lines[0]


def _missing_db(pg_url: str) -> tuple[sa.URL, str]:
    url = sa.make_url(pg_url).set(database=f"pyc_missing_{uuid.uuid4().hex[:8]}", query={})
    return url, url.render_as_string(hide_password=False)


def test_missing_database_says_so_and_shows_createdb(pg_url: str, tmp_path: Path) -> None:
    url, text = _missing_db(pg_url)
    blobs = (tmp_path / "blobs").as_uri()
    for args in (("serve", "--port", "0", "--blobs", blobs),
                 ("apikey", "create", "--tenant", "acme")):
        r = run(*args, "--db", text, "--data-dir", str(tmp_path / "d"))
        line = one_line_error(r, args[0])
        assert f"database {url.database!r} does not exist" in line
        assert f"createdb -h {url.host} -p {url.port} -U {url.username} {url.database}" in line
        assert r.stdout == ""  # serve made no tenant nor key
    # The line shown makes the database, and the same command then works.
    createdb = shutil.which("createdb")
    if createdb is None:  # the client tools are optional: the message was checked above
        return
    shown = line.split("create it with: ", 1)[1]
    subprocess.run(shlex.split(shown), check=True, timeout=60, capture_output=True)
    try:
        r = run("apikey", "create", "--tenant", "acme", "--db", text,
                "--data-dir", str(tmp_path / "d"))
        assert r.returncode == 0, r.stderr
        assert len(r.stdout.strip()) == 64
    finally:
        subprocess.run([createdb.replace("createdb", "dropdb"), "-h", str(url.host), "-p",
                        str(url.port), "-U", str(url.username), str(url.database)],
                       timeout=60, capture_output=True)


def test_unreachable_database_server_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run("apikey", "create", "--tenant", "acme", "--db",
            f"postgresql://postgres@127.0.0.1:{port}/x", "--data-dir", str(tmp_path))
    line = one_line_error(r, "apikey")
    assert f"cannot connect to the database postgresql://postgres@127.0.0.1:{port}/x" in line


def test_port_in_use_suggests_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("serve", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    line = one_line_error(r, "serve")
    assert f"port {port} on 127.0.0.1 is in use" in line and "--port" in line
    # Nothing was made: the next start is still the first, and prints its key.
    assert r.stdout == ""
    assert not (tmp_path / "d" / "pyconnector.db").exists()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_unwritable_data_dir(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    data_dir = blocker if where == "a file" else blocker / "data"
    for args in (("serve", "--port", "0"), ("apikey", "create", "--tenant", "acme")):
        line = one_line_error(run(*args, "--data-dir", str(data_dir)), args[0])
        assert f"the data directory {str(data_dir)!r} is not writable" in line
        assert "--data-dir" in line


def test_read_only_data_dir(tmp_path: Path) -> None:
    """A directory without write permission (root writes anywhere: as root, the command
    runs as user nobody, whom the permissions stop)."""
    ro = Path(tempfile.mkdtemp(prefix="pyc-ro-"))  # in /tmp: nobody can reach it
    ro.chmod(0o555)
    as_nobody: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "as root this test needs setpriv (util-linux) to drop privileges"
        as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        for data_dir in (ro, ro / "data"):
            r = subprocess.run([*as_nobody, COMMAND, "serve", "--port", "0", "--data-dir",
                                str(data_dir)], capture_output=True, text=True, timeout=120,
                               cwd=ro.parent)
            line = one_line_error(r, "serve")
            assert f"{str(data_dir)!r} is not writable (Permission denied)" in line
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)
        shutil.rmtree(ro)


@pytest.mark.parametrize("url", ["mysql://root@127.0.0.1/pc", "mongodb://127.0.0.1/pc",
                                 "not a url"])
def test_unsupported_database_scheme_names_the_supported_ones(tmp_path: Path,
                                                              url: str) -> None:
    for args in (("serve", "--port", "0"), ("apikey", "create", "--tenant", "acme")):
        line = one_line_error(run(*args, "--db", url, "--data-dir", str(tmp_path)), args[0])
        assert "sqlite:///" in line and "postgresql://" in line
        if "://" in url:
            assert f"unsupported database {url.split('://')[0]}://" in line


@pytest.mark.parametrize(("name", "value"), [("port", "eighty"),
                                             ("max_upload_bytes", "1.5GB")])
def test_non_integer_setting_names_the_variable(tmp_path: Path, name: str,
                                                value: str) -> None:
    variable = f"PYCONNECTOR_{name.upper()}"
    r = run("serve", "--data-dir", str(tmp_path), env={variable: value})
    line = one_line_error(r, "serve")
    assert variable in line and repr(value) in line and "integer" in line
    option = "--" + name.replace("_", "-")
    line = one_line_error(run("serve", option, value, "--data-dir", str(tmp_path)), "serve")
    assert option in line and repr(value) in line


@pytest.mark.parametrize("blobs_env", [False, True])
def test_postgresql_without_a_named_blob_store_is_refused(pg_url: str, tmp_path: Path,
                                                          blobs_env: bool) -> None:
    """On PostgreSQL, the implicit per-process blob store would leave a second process
    answering 404 for files the first one stored: serve refuses it before touching
    anything, and starts once the store is named (by option or variable)."""
    data = tmp_path / "d"
    line = one_line_error(run("serve", "--port", "0", "--db", pg_url, "--data-dir",
                              str(data)), "serve")
    assert "--blobs file:///shared/path" in line and "s3://" in line, line
    assert f"--blobs {(data.resolve() / 'blobs').as_uri()}" in line, line
    assert not data.exists(), "nothing is made before the refusal"
    # Named, it starts (the port is taken by a listener first, so it stops there: the
    # refusal above came before the port, this one after the blob check).
    blobs = (tmp_path / "shared").as_uri()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = str(s.getsockname()[1])
        args = ["serve", "--port", port, "--db", pg_url, "--data-dir", str(data)]
        r = (run(*args, env={"PYCONNECTOR_BLOBS": blobs}) if blobs_env
             else run(*args, "--blobs", blobs))
    assert "in use" in one_line_error(r, "serve")

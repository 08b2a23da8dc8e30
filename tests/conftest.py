"""Shared fixtures: apps per configuration, real services, real server processes.

Services (PostgreSQL, …) are real. A test that needs one that is down skips with the
reason when run by hand, and fails when ``CI`` is set, so CI cannot pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from pyconnector_server.process import ServerProcess

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_BASE_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"


def unavailable(message: str) -> NoReturn:
    """Skip (by hand) or fail (under CI) for a real component that is missing."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI requires it)")
    pytest.skip(message)


def need_service(name: str, host: str, port: int) -> None:
    """Skip (by hand) or fail (under CI) when a real service is not listening."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        unavailable(f"{name} not reachable on {host}:{port}: {exc}")


def wait_for(what: str, done: Callable[[], object], timeout: float = 10) -> None:
    """Poll ``done`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# -- RabbitMQ -------------------------------------------------------------------------------
RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl -q``; its output. Skips (fails under CI) where it is missing."""
    import shutil
    import subprocess

    exe = shutil.which("rabbitmqctl")
    if exe is None:
        unavailable("rabbitmqctl is not installed")
    out = subprocess.run([exe, "-q", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def rabbit_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of the test's own (guest allowed), deleted at the end: other
    platforms on the shared RabbitMQ name their queues alike (``t1.rule.1``), and what the
    test does to its connections touches nobody else."""
    need_service("RabbitMQ", RABBIT_HOST, RABBIT_PORT)
    vhost = f"pyc-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        rabbitmqctl("delete_vhost", vhost)


def rabbit_url(vhost: str) -> str:
    return f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{vhost}"


# -- Celery workers (the celery task executor) ------------------------------------------------
@contextmanager
def celery_worker(executor_url: str, concurrency: int = 2,
                  *extra: str) -> Iterator[subprocess.Popen[str]]:
    """A real ``pyconnector worker`` process for ``executor_url``, ready to take jobs."""
    need_service("RabbitMQ", RABBIT_HOST, RABBIT_PORT)
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyconnector_server.cli", "worker", "--executor", executor_url,
         "--concurrency", str(concurrency), *extra],
        stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def output() -> str:
        log.seek(0)
        return log.read()

    try:
        deadline = time.monotonic() + 60
        while " ready." not in output():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"pyconnector worker did not become ready:\n{output()[-3000:]}")
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()  # warm shutdown: its jobs were stopped by their platform
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@contextlib.asynccontextmanager
async def worker_routes() -> AsyncIterator[str]:
    """The routes workers report to, served in this event loop (where the executor's
    jobs live); their base URL."""
    import asyncio

    import uvicorn
    from fastapi import FastAPI

    from pyconnector_server.backends.executor import remote
    from pyconnector_server.errors import install as install_errors

    app = FastAPI()
    install_errors(app)
    app.include_router(remote.router, prefix="/worker")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/worker"
    finally:
        server.should_exit = True
        await serving
        sock.close()


@pytest.fixture(scope="module")
def celery_queue() -> Iterator[str]:
    """A Celery queue of the module's own on the shared RabbitMQ, deleted at the end."""
    need_service("RabbitMQ", RABBIT_HOST, RABBIT_PORT)
    queue = f"pyc-test-{uuid.uuid4().hex[:10]}"
    yield queue
    with contextlib.suppress(Exception):
        rabbitmqctl("delete_queue", queue)


# -- PostgreSQL ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL on database `test`, in a schema of its own dropped at the end."""
    yield from _pg_schema()


@pytest.fixture
def own_pg_url() -> Iterator[str]:
    """A PostgreSQL URL in a schema of this test's own: for tests whose platforms must be
    the only ones on their database (schedulers, drainers: the session's server process
    on ``pg_url`` would take part in what they do)."""
    yield from _pg_schema()


def _pg_schema() -> Iterator[str]:
    need_service("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    schema = f"pyc_{uuid.uuid4().hex[:10]}"
    user = os.environ.get("PGUSER", "postgres")
    base = PG_BASE_URL.replace("postgres@", f"{user}@")
    try:
        admin = psycopg.connect(base, autocommit=True)
    except psycopg.OperationalError:
        # The machine's trust auth may map to another role (root); try it.
        base = PG_BASE_URL.replace("postgres@", "root@")
        admin = psycopg.connect(base, autocommit=True)
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    # libpq's `options` reaches both psycopg and the ADBC driver.
    yield f"{base}?options=-csearch_path%3D{schema}"
    # An app of the test may still be open here (pytest tears fixtures down in reverse:
    # a test's app fixture set up before this one closes after it), its background loops
    # querying these tables: the drop can deadlock with them. Try again; their queries
    # are short.
    for attempt in range(20):
        try:
            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute("SET lock_timeout = '2s'")
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            return
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
            if attempt == 19:
                raise
            time.sleep(0.2)


DB_KINDS = ["sqlite", "postgresql"]


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def own_db_url(db_kind: str, request: pytest.FixtureRequest) -> str:
    """As ``db_url``, with PostgreSQL in a schema of the test's own (``own_pg_url``)."""
    return "" if db_kind == "sqlite" else request.getfixturevalue("own_pg_url")


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The store URL for ``db_kind`` as `--db` takes it ("" = SQLite in the data dir)."""
    if db_kind == "sqlite":
        return ""
    return request.getfixturevalue("pg_url")


# -- in-process apps ------------------------------------------------------------------------
@dataclass
class AppClient:
    """A platform app in-process, with a tenant key, driven by Starlette's TestClient."""

    client: Any
    api_key: str
    app: Any
    new_key: Callable[[str], str]

    def headers(self, **extra: str) -> dict[str, str]:
        return {"x-api-key": self.api_key, **extra}

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(**kw.pop("headers", {})), **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(path, headers=self.headers(**kw.pop("headers", {})), **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, headers=self.headers(**kw.pop("headers", {})), **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.put(path, headers=self.headers(**kw.pop("headers", {})), **kw)


@contextmanager
def open_app(data_dir: Path, db: str = "", **overrides: Any) -> Iterator[AppClient]:
    """A platform app in-process for ``data_dir``/``db``, with a new tenant's key."""
    from starlette.testclient import TestClient

    from pyconnector_server.app import create_app
    from pyconnector_server.auth import create_api_key
    from pyconnector_server.settings import Settings

    settings = Settings.load({"data_dir": str(data_dir), "db": db, **overrides}, environ={})
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:

        def new_key(tenant: str) -> str:
            return create_api_key(app.state.db, tenant)

        yield AppClient(client, new_key(f"t-{uuid.uuid4().hex[:8]}"), app, new_key)


@pytest.fixture(scope="session")
def app_opener() -> Callable[..., Any]:
    """:func:`open_app`, for fixtures of a wider scope that share one app."""
    return open_app


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., AppClient]]:
    """Factory: ``make_app(db="", **settings)`` → an :class:`AppClient` (own tenant)."""
    with ExitStack() as stack:
        count = iter(range(1_000_000))

        def factory(db: str = "", **overrides: Any) -> AppClient:
            data_dir = tmp_path / f"data{next(count)}"
            return stack.enter_context(open_app(data_dir, db, **overrides))

        yield factory


@pytest.fixture
def api(make_app: Callable[..., AppClient]) -> AppClient:
    """An in-process app on the embedded default (SQLite)."""
    return make_app()


@pytest.fixture
def api_any(make_app: Callable[..., AppClient], db_url: str) -> AppClient:
    """An in-process app on each store: SQLite and PostgreSQL."""
    return make_app(db_url)


# -- real server processes ----------------------------------------------------------------
class Server(ServerProcess):
    """A running ``pyconnector serve`` process, with test conveniences."""

    def new_key(self, tenant: str | None = None) -> str:
        """A key for a new (or the named) tenant, made with the CLI as an admin would."""
        return super().new_key(tenant or f"t-{uuid.uuid4().hex[:8]}")

    def connector(self, api_key: str | None = None, **kw: Any) -> Any:
        import pyconnector

        return pyconnector.connectors(api_key=api_key or self.new_key(), URL=self.url, **kw)

    def dls_key(self, tenant: str, user: str) -> str:
        """``pyconnector dlsuser create``: a new DLS key for ``user`` of ``tenant``."""
        import subprocess
        import sys

        args = [sys.executable, "-m", "pyconnector_server.cli", "dlsuser", "create",
                "--data-dir", str(self.data_dir), "--tenant", tenant, "--user", user]
        if self.db:
            args += ["--db", self.db]
        out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
        lines = out.stdout.splitlines()
        assert len(lines) == 1 and len(lines[0]) == 64, out.stdout  # the key, only that
        return lines[0]


def start_server(data_dir: Path, db: str = "", *extra: str) -> Server:
    """Start ``pyconnector serve`` on a free port and wait until /health answers."""
    p = ServerProcess.start(data_dir, db, *extra)
    return Server(p.proc, p.url, p.api_key, p.data_dir, p.db, p.output)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real platform process on the embedded default for the whole session."""
    s = start_server(tmp_path_factory.mktemp("serve"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Iterator[Server]:
    """One real platform process on PostgreSQL for the whole session."""
    s = start_server(tmp_path_factory.mktemp("serve-pg"), pg_url)
    yield s
    s.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue("server" if request.param == "sqlite" else "pg_server")


# -- S3: moto's server mode on loopback ----------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The endpoint URL of an S3-compatible server (moto) on a free loopback port.

    Fake AWS credentials go into the environment, so in-process stores and server
    processes started afterwards authenticate to it the standard way.
    """
    import subprocess
    import sys
    import time

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto S3 server did not start")
            time.sleep(0.1)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", "us-east-1")):
            mp.setenv(name, value)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3_url(s3_endpoint: str) -> str:
    """``s3://<fresh bucket>/blobs`` on the moto server."""
    import boto3

    bucket = f"pyc-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/blobs"


# -- a client gone in the middle of an operation of several steps ----------------------------
@pytest.fixture
def gone_after(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any, str], None]:
    """``gone_after(store, "method")``: the request's client disconnects right after that
    store call, once (its :class:`~pyconnector_server.cancel.Cancellation` fires, as
    CancelOnDisconnect fires it), whichever request context the call ran in."""
    from pyconnector_server import cancel

    made: list[cancel.Cancellation] = []
    real_init = cancel.Cancellation.__init__

    def init(self: cancel.Cancellation) -> None:
        real_init(self)
        made.append(self)

    monkeypatch.setattr(cancel.Cancellation, "__init__", init)

    def arm(store: Any, method: str) -> None:
        real = getattr(store, method)

        def then_gone(*args: Any, **kw: Any) -> Any:
            out = real(*args, **kw)
            made[-1].cancel()
            monkeypatch.setattr(store, method, real)  # a client goes once
            return out

        monkeypatch.setattr(store, method, then_gone)

    return arm

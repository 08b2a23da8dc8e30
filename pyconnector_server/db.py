"""The relational store shared by every service: SQLite (embedded) or PostgreSQL.

All tables live in one :data:`metadata`; each service module adds its own. SQLAlchemy
hides the dialect; the few places that need a dialect's native bulk path (COPY, Arrow
reads through ADBC on PostgreSQL) ask :attr:`Database.dialect` and are tested on both.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from . import cancel

if TYPE_CHECKING:
    import pyarrow as pa

metadata = sa.MetaData()
MIGRATION_LOCK = 0x7079636F6E6E  # "pyconn": one migrating server at a time
ARROW_BLOCK_ROWS = 65_536  # rows per Arrow batch read from SQLite

tenant = sa.Table(
    "tenant", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    # Symmetric key for JWT mode. Kept in clear: HMAC verification needs the key itself.
    sa.Column("jwt_secret", sa.String(255)),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

api_key = sa.Table(
    "api_key", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", ondelete="CASCADE"),
              nullable=False),
    # SHA-256 of the key; keys are 256 random bits, so a fast hash is enough.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    # "admin": the tenant's administrator (the key made with the tenant, or --role admin);
    # "app": a key handed to an application or a DLS user - no admin routes.
    sa.Column("role", sa.String(16), nullable=False, server_default="admin"),
    # The first characters of the key, shown by `apikey list` so a key can be named for
    # `apikey revoke` without storing it.
    sa.Column("prefix", sa.String(12), nullable=False, server_default=""),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)


def _sqlite_pragmas(dbapi_conn: Any, record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite recipe), so writes
    # can take the lock up front with BEGIN IMMEDIATE instead of failing on upgrade.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL + synchronous=NORMAL: a committed transaction survives a crash of the process
    # (kill -9); only an OS crash or power loss may lose the last commits.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint every ~40 MB of WAL rather than 4 MB: small, frequent write transactions
    # (observation batches touch one page per series) then rewrite each page less often.
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
    # SQLite has no statement timeout: a progress handler, called every few thousand
    # virtual-machine steps, aborts the statement once the read's deadline has passed.
    deadline = record.info["deadline"] = [0.0]
    dbapi_conn.set_progress_handler(
        lambda: deadline[0] != 0.0 and time.monotonic() > deadline[0], 10_000)


def _sqlite_begin(conn: sa.Connection) -> None:
    immediate = conn.get_execution_options().get("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


SCHEMES = ("sqlite", "postgresql")  # the stores the platform runs on


class DatabaseError(Exception):
    """The store cannot be used (unsupported URL, a database that does not exist, a
    server that does not answer): its message is one line for the command line."""


def _shown(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True).replace("postgresql+psycopg://",
                                                            "postgresql://")


def connect_error(url: str | sa.URL, exc: Exception) -> DatabaseError:
    """``exc`` (raised opening ``url``) as a one-line :class:`DatabaseError`: a missing
    PostgreSQL database says so and shows the ``createdb`` line that makes it."""
    u = sa.make_url(url)
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = next((line.strip() for line in text.splitlines() if "FATAL" in line),
                 text.splitlines()[0] if text else type(exc).__name__)
    if u.get_backend_name() == "postgresql" and "does not exist" in text and (
            f'database "{u.database}"' in text):
        opts = " ".join(f"{flag} {value}" for flag, value in (
            ("-h", u.host), ("-p", u.port), ("-U", u.username)) if value)
        return DatabaseError(f"database {u.database!r} does not exist on "
                             f"{u.host or 'localhost'}:{u.port or 5432}; create it with: "
                             f"createdb {opts + ' ' if opts else ''}{u.database}")
    if u.get_backend_name() == "sqlite":
        return DatabaseError(f"cannot open the SQLite store {u.database}: {first}")
    return DatabaseError(f"cannot connect to the database {_shown(u)}: "
                         f"{first.removeprefix('FATAL:').strip()}")


class Database:
    """Engine, transactions (bounded in time, cancelled with their request) and Arrow reads.

    SQLite is reached through Python's ``sqlite3`` only. A second SQLite library in the
    process (the ADBC driver bundles its own) corrupts the shared-memory index and has
    killed the server with SIGBUS: each copy's ``close()`` drops the other's POSIX locks.
    """

    def __init__(self, url: str, statement_timeout: float = 30) -> None:
        try:
            self.url = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise DatabaseError(f"not a database URL: {url!r}; use sqlite:///path or "
                                "postgresql://user@host:port/name") from exc
        self.dialect = self.url.get_backend_name()  # "sqlite" or "postgresql"
        if self.dialect not in SCHEMES:
            raise DatabaseError(f"unsupported database {self.url.drivername}://…: supported "
                                "are sqlite:///path (the default, in --data-dir) and "
                                "postgresql://user@host:port/name")
        self.statement_timeout = statement_timeout
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=8, max_overflow=8, pool_pre_ping=True)
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            event.listen(self.engine, "connect", self._pg_session)
        self._adbc: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def _pg_session(self, dbapi_conn: Any, _record: Any) -> None:
        # Every statement is bounded; bulk writes lift the bound for their transaction.
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = {self._timeout_ms}")
        dbapi_conn.commit()

    @property
    def _timeout_ms(self) -> int:
        return max(0, int(self.statement_timeout * 1000))

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (creating it on a new store).

        On PostgreSQL an advisory lock makes servers starting together take turns.
        """
        from alembic import command
        from alembic.config import Config

        from .services import migration_dirs

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        # The core's revisions and each service's own folder; os.pathsep between them, so
        # a path with spaces stays one path.
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations",
                               os.pathsep.join(str(d) for d in migration_dirs()))
        with self.write(bulk=True) as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def close(self) -> None:
        while not self._adbc.empty():
            try:
                self._adbc.get_nowait().close()
            except Exception:  # noqa: BLE001 - closing best effort at shutdown
                pass
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read transaction: bounded by the statement timeout, cancelled with its request."""
        with self.engine.connect() as conn, conn.begin(), self._guarded(conn, bounded=True):
            yield conn

    @contextmanager
    def write(self, bulk: bool = False) -> Iterator[sa.Connection]:
        """A write transaction: committed on exit, rolled back on any exception.

        ``bulk`` lifts the statement timeout for this transaction, for writes whose size
        the platform accepted (a large CSV, a cascade delete) rather than user-shaped work.
        """
        with self.engine.connect().execution_options(immediate=True) as conn, conn.begin():
            if bulk and self.dialect == "postgresql":
                conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            with self._guarded(conn, bounded=False):
                yield conn

    @contextmanager
    def _guarded(self, conn: sa.Connection, bounded: bool) -> Iterator[None]:
        raw = conn.connection.driver_connection
        if self.dialect != "sqlite":
            with cancel.watching(raw.cancel_safe):
                yield
            return
        deadline = conn.connection.info["deadline"]
        if bounded and self.statement_timeout > 0:
            deadline[0] = time.monotonic() + self.statement_timeout
        try:
            with cancel.watching(raw.interrupt):
                yield
        finally:
            deadline[0] = 0.0

    # -- Arrow reads -------------------------------------------------------------------
    def read_arrow(self, queries: list[tuple[sa.Select[Any], pa.Schema]]) -> list[pa.Table]:
        """Run ``queries`` in one read transaction; each answers an Arrow table of its schema
        (columns by position).

        PostgreSQL answers through ADBC (binary COPY straight into Arrow). SQLite answers
        through the same ``sqlite3`` connections as everything else, a block of rows at a
        time turned into Arrow columns.
        """
        if self.dialect == "postgresql":
            with self._adbc_conn() as conn:
                cur = conn.cursor()
                try:
                    with cancel.watching(cur.adbc_cancel):
                        out = []
                        for stmt, schema in queries:
                            cur.execute(*self.compile(stmt))
                            table = cur.fetch_arrow_table()
                            out.append(table.rename_columns(schema.names).cast(schema))
                        return out
                finally:
                    cur.close()
        with self.read() as conn:
            return [self._sqlite_arrow(conn, stmt, schema) for stmt, schema in queries]

    def _sqlite_arrow(self, conn: sa.Connection, stmt: sa.Select[Any],
                      schema: pa.Schema) -> pa.Table:
        import numpy as np
        import pyarrow as pa

        # Rows come as tuples; a column at a time through itemgetter and np.fromiter is
        # about twice as fast as transposing them with zip and letting Arrow infer types.
        readers = []
        for i, f in enumerate(schema):
            get = itemgetter(i)
            if pa.types.is_integer(f.type) or pa.types.is_floating(f.type):
                dtype = np.int64 if pa.types.is_integer(f.type) else np.float64
                readers.append(lambda rows, get=get, dtype=dtype, t=f.type: pa.array(
                    np.fromiter(map(get, rows), dtype, len(rows))).cast(t))
            else:
                readers.append(lambda rows, get=get, t=f.type: pa.array(list(map(get, rows)), t))
        sql, args = self.compile(stmt)
        cur = conn.connection.driver_connection.cursor()
        batches = []
        try:
            cur.execute(sql, args)
            while rows := cur.fetchmany(ARROW_BLOCK_ROWS):
                batches.append(pa.record_batch([read(rows) for read in readers], schema=schema))
        finally:
            cur.close()
        return pa.Table.from_batches(batches, schema=schema)

    @contextmanager
    def _adbc_conn(self) -> Iterator[Any]:
        """A pooled ADBC PostgreSQL connection (bounded by the statement timeout)."""
        try:
            conn = self._adbc.get_nowait()
        except queue.Empty:
            import adbc_driver_postgresql.dbapi as adbc

            url = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            conn = adbc.connect(url)
            with conn.cursor() as cur:
                cur.execute(f"SET statement_timeout = {self._timeout_ms}")
            conn.commit()
        ok = False
        try:
            yield conn
            ok = True
        finally:
            if ok:
                try:
                    conn.rollback()
                except Exception:  # noqa: BLE001 - a broken connection is dropped below
                    ok = False
            if ok:
                self._adbc.put(conn)
            else:
                conn.close()

    def compile(self, stmt: sa.ClauseElement) -> tuple[str, list[Any]]:
        """Compile a Core statement to SQL text and positional parameters for ADBC."""
        dialect = self.engine.dialect
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            dialect = postgresql.dialect(paramstyle="numeric_dollar")
        compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        positions = compiled.positiontup or []
        return str(compiled), [params[name] for name in positions]

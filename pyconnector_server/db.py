"""The relational store shared by every service: SQLite (embedded) or PostgreSQL.

All tables live in one :data:`metadata`; each service module adds its own. SQLAlchemy
hides the dialect; the few places that need a dialect's native bulk path (COPY, Arrow
reads through ADBC) ask :attr:`Database.dialect` and are tested on both.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()
MIGRATION_LOCK = 0x7079636F6E6E  # "pyconn": one migrating server at a time

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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
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


def _sqlite_begin(conn: sa.Connection) -> None:
    immediate = conn.get_execution_options().get("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Engine, transactions and a small pool of Arrow (ADBC) connections for bulk reads."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        self.dialect = self.url.get_backend_name()  # "sqlite" or "postgresql"
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=8, max_overflow=8, pool_pre_ping=True)
        self.engine = sa.create_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._adbc: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._adbc_lock = threading.Lock()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (creating it on a new store).

        On PostgreSQL an advisory lock makes servers starting together take turns.
        """
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        with self.engine.connect().execution_options(immediate=True) as conn, conn.begin():
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
        """A read transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A write transaction: committed on exit, rolled back on any exception."""
        with self.engine.connect().execution_options(immediate=True) as conn, conn.begin():
            yield conn

    # -- Arrow reads -------------------------------------------------------------------
    def _adbc_connect(self) -> Any:
        if self.dialect == "sqlite":
            import adbc_driver_sqlite.dbapi as adbc

            return adbc.connect(self.url.database)
        import adbc_driver_postgresql.dbapi as adbc

        url = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return adbc.connect(url)

    @contextmanager
    def arrow(self) -> Iterator[Any]:
        """An ADBC DB-API connection whose cursors return Arrow tables (pooled)."""
        try:
            conn = self._adbc.get_nowait()
        except queue.Empty:
            conn = self._adbc_connect()
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

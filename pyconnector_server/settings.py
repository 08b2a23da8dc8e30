"""The platform's settings: one table with defaults and help.

Each setting is read from a command-line argument, then the environment
(``PYCONNECTOR_<NAME>``), then its default. The CLI's options and
``docs/configuration.md`` are generated from :data:`SETTINGS`; a test keeps them in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "PYCONNECTOR_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Interface to listen on."),
    Setting("port", 8080, "TCP port to listen on (0 picks a free one and prints it).", int),
    Setting("data_dir", "./pyconnector-data",
            "Directory for the embedded database, blobs and the first-start API key."),
    Setting("db", "", "Database URL: empty for SQLite in the data dir, or "
            "postgresql://user@host:5432/db for PostgreSQL."),
    Setting("max_body_bytes", 16 * 1024 * 1024,
            "Largest JSON request body accepted; bigger bodies get 413.", int),
    Setting("max_upload_bytes", 4 * 1024 * 1024 * 1024,
            "Largest streamed upload (CSV observations) accepted; bigger ones get 413.", int),
    Setting("max_page_size", 10_000, "Largest `limit` a paged JSON query may ask for.", int),
    Setting("jwt_leeway_seconds", 30, "Clock skew tolerated when checking JWT expiry.", int),
    Setting("log_level", "info", "Log level of the server (debug, info, warning, error)."),
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one platform instance."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./pyconnector-data"
    db: str = ""
    max_body_bytes: int = 16 * 1024 * 1024
    max_upload_bytes: int = 4 * 1024 * 1024 * 1024
    max_page_size: int = 10_000
    jwt_leeway_seconds: int = 30
    log_level: str = "info"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, args: dict[str, Any] | None = None,
             environ: dict[str, str] | None = None) -> Settings:
        """Arguments first (``None`` means not given), then environment, then defaults."""
        args = args or {}
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            raw = args.get(s.name)
            if raw is None:
                raw = environ.get(ENV_PREFIX + s.name.upper())
            values[s.name] = s.default if raw is None else s.type(raw)
        return cls(**values)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the store; SQLite in the data dir unless ``db`` is set."""
        if self.db:
            url = self.db
            # Users write the libpq form; SQLAlchemy needs to be told to use psycopg 3.
            if url.startswith(("postgresql://", "postgres://")):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{self.data_path / 'pyconnector.db'}"


assert [s.name for s in SETTINGS] == [f.name for f in fields(Settings) if f.name != "extra"]

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
            "Directory for the embedded database and local files (blobs, temporary uploads)."),
    Setting("db", "", "Database URL: empty for SQLite in the data dir, or "
            "postgresql://user@host:5432/db for PostgreSQL."),
    Setting("max_body_bytes", 16 * 1024 * 1024,
            "Largest JSON request body accepted; bigger bodies get 413.", int),
    Setting("max_upload_bytes", 4 * 1024 * 1024 * 1024,
            "Largest streamed upload (CSV observations) accepted; bigger ones get 413.", int),
    Setting("max_page_size", 10_000, "Largest `limit` a paged JSON query may ask for.", int),
    Setting("jwt_leeway_seconds", 30, "Clock skew tolerated when checking JWT expiry.", int),
    Setting("log_level", "info", "Log level of the server (debug, info, warning, error)."),
    Setting("blobs", "", "Where data lake files are stored: empty for <data dir>/blobs, "
            "file:///path, or s3://bucket/prefix (AWS credentials from the standard AWS_* "
            "variables)."),
    Setting("s3_endpoint_url", "", "Endpoint of an S3-compatible service (MinIO, Ceph…) for "
            "s3:// blobs; empty for AWS."),
    Setting("dls_quota_bytes", 0, "Data lake storage quota of each tenant in bytes (0: "
            "unlimited); `pyconnector dlsquota set` overrides it per tenant.", int),
    Setting("jwt_max_lifetime_seconds", 3600, "Longest lifetime (exp - iat) a JWT may "
            "have; tokens that claim more are refused with 401.", int),
    Setting("statement_timeout_seconds", 30, "Longest a single database statement of a "
            "request may run before it is cancelled (the request then gets 503); 0: no "
            "limit. Bulk writes (CSV ingests, cascade deletes) are not bounded.", float),
    Setting("max_connections", 1000, "Concurrent connections served; a connection past "
            "the limit gets 503 at once and is closed.", int),
    Setting("max_header_bytes", 64 * 1024, "Largest request line plus headers accepted; "
            "bigger requests get 431 and the connection is closed.", int),
    Setting("header_timeout_seconds", 15, "Time a client has to send a request's line and "
            "headers, from its first byte; slower requests get 408 and the connection is "
            "closed.", int),
    Setting("body_timeout_seconds", 60, "Longest pause between two parts of a request "
            "body; a stalled upload gets 408 and is cut (time the server itself holds the "
            "body back is not counted).", int),
    Setting("keep_alive_seconds", 5, "How long a connection with no request in progress "
            "(a new one, or one between requests) stays open.", int),
    Setting("sweep_grace_seconds", 3600, "Age after which an interrupted upload's "
            "temporary file, or a blob no catalog row points at, is removed.", int),
    Setting("sweep_interval_seconds", 600, "How often the sweeper runs (it also runs at "
            "start); 0 disables the periodic run.", int),
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
    blobs: str = ""
    s3_endpoint_url: str = ""
    dls_quota_bytes: int = 0
    jwt_max_lifetime_seconds: int = 3600
    statement_timeout_seconds: float = 30
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024
    header_timeout_seconds: int = 15
    body_timeout_seconds: int = 60
    keep_alive_seconds: int = 5
    sweep_grace_seconds: int = 3600
    sweep_interval_seconds: int = 600
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


DOC_START, DOC_END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_markdown() -> str:
    """The settings table of docs/configuration.md (regenerate with `make docs`)."""
    lines = ["| Setting | CLI option | Environment | Default | Meaning |",
             "|---|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default != "" else "(empty)"
        lines.append(f"| {s.name} | `--{s.name.replace('_', '-')}` | "
                     f"`{ENV_PREFIX}{s.name.upper()}` | {default} | {s.help} |")
    return "\n".join(lines)


def update_doc(path: str | Path) -> bool:
    """Rewrite the generated part of ``path``; True if it changed."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    head, rest = text.split(DOC_START, 1)
    _, tail = rest.split(DOC_END, 1)
    new = f"{head}{DOC_START}\n{settings_markdown()}\n{DOC_END}{tail}"
    if new != text:
        p.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    import sys

    update_doc(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md")

"""The platform's settings: one table with defaults, help and the values each accepts.

Each setting is read from a command-line argument, then the environment
(``PYCONNECTOR_<NAME>``), then its default. The fields of :class:`Settings` are the table:
each declares its type, default, help and limits once, and :data:`SETTINGS` lists them for
the CLI's options and ``docs/configuration.md`` (a test keeps the doc in step). A value that
does not fit raises :class:`SettingsError` naming the option or variable it came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

ENV_PREFIX = "PYCONNECTOR_"
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A setting's value does not convert or is out of range; the message names its source."""


def _setting(default: Any, help: str, *, minimum: float | None = None,
             maximum: float | None = None, choices: tuple[str, ...] = ()) -> Any:
    """A field of :class:`Settings`: its default, its help, and the values it accepts."""
    return field(default=default, metadata={"help": help, "minimum": minimum,
                                            "maximum": maximum, "choices": choices})


@dataclass(frozen=True)
class Setting:
    """One row of the settings table, as the CLI, the loader and the docs see it."""

    name: str
    default: Any
    help: str
    type: type = str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        """The command-line option, e.g. ``--max-body-bytes``."""
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        """The environment variable, e.g. ``PYCONNECTOR_MAX_BODY_BYTES``."""
        return ENV_PREFIX + self.name.upper()

    def expected(self) -> str:
        """What a valid value looks like, in words, for error messages."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        what = {int: "an integer", float: "a number"}.get(self.type, "a string")
        lo, hi = self.minimum, self.maximum
        if lo is not None and hi is not None:
            return f"{what} from {lo:g} to {hi:g}"
        if lo is not None:
            return f"{what} of at least {lo:g}"
        return what

    def convert(self, raw: Any, source: str) -> Any:
        """``raw`` (a string from the command line or environment, or a Python value) as
        this setting's type; :class:`SettingsError` naming ``source`` if it does not fit."""
        value = self._parse(raw)
        ok = value is not None
        if ok and self.type in (int, float):
            ok = ((self.minimum is None or value >= self.minimum)
                  and (self.maximum is None or value <= self.maximum))
        if ok and self.choices:
            ok = value in self.choices
        if not ok:
            raise SettingsError(f"{source}: expected {self.expected()}, got {raw!r}")
        return value

    def _parse(self, raw: Any) -> Any:
        # bool is an int to Python, but True is no port number.
        if isinstance(raw, bool):
            return None
        if self.type is int:
            if isinstance(raw, int):
                return raw
            try:
                return int(raw) if isinstance(raw, str) else None
            except ValueError:
                return None
        if self.type is float:
            if isinstance(raw, (int, float)):
                value = float(raw)
            else:
                try:
                    value = float(raw) if isinstance(raw, str) else math.nan
                except ValueError:
                    return None
            return value if math.isfinite(value) else None
        return raw if isinstance(raw, str) else None


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one platform instance; its fields are the settings table."""

    host: str = _setting("127.0.0.1", "Interface to listen on.")
    port: int = _setting(8080, "TCP port to listen on (0 picks a free one and prints it).",
                         minimum=0, maximum=65535)
    data_dir: str = _setting(
        "./pyconnector-data",
        "Directory for the embedded database and local files (blobs, temporary uploads).")
    db: str = _setting("", "Database URL: empty for SQLite in the data dir, or "
                       "postgresql://user@host:5432/db for PostgreSQL.")
    max_body_bytes: int = _setting(16 * 1024 * 1024, "Largest JSON request body accepted; "
                                   "bigger bodies get 413.", minimum=1)
    max_upload_bytes: int = _setting(4 * 1024 * 1024 * 1024, "Largest streamed upload (CSV "
                                     "observations, Data Lake files) accepted; bigger ones get "
                                     "413 (a Data Lake upload: TCUP's 400 "
                                     "upload.filesize.exceeds).", minimum=1)
    max_page_size: int = _setting(10_000, "Largest `limit` a paged JSON query may ask for.",
                                  minimum=1)
    sos_slice_rows: int = _setting(65_536, "Values per observed property that a CSV or "
                                   "Arrow observation answer reads at a time: it bounds the "
                                   "server's memory for large answers.", minimum=1)
    jwt_leeway_seconds: int = _setting(30, "Clock skew tolerated when checking JWT expiry.",
                                       minimum=0)
    log_level: str = _setting("info", f"Log level of the server ({', '.join(LOG_LEVELS)}).",
                              choices=LOG_LEVELS)
    blobs: str = _setting("", "Where data lake files are stored: empty for <data dir>/blobs, "
                          "file:///path, s3://bucket/prefix (AWS credentials from the "
                          "standard AWS_* variables), or memory:// (this process only, "
                          "emptied at exit; for tests).")
    s3_endpoint_url: str = _setting("", "Endpoint of an S3-compatible service (MinIO, Ceph…) "
                                    "for s3:// blobs; empty for AWS.")
    broker: str = _setting("memory://", "Message broker for routing: memory:// (the embedded "
                           "in-process router; messages live in this process only) or "
                           "amqp://user:password@host:5672/vhost (RabbitMQ; amqps:// for TLS).")
    mqtt: str = _setting("", "MQTT broker whose messages enter routing on amq.topic (topic "
                         "`a/b` becomes routing key `a.b`): empty for none (RabbitMQ's own "
                         "MQTT plugin needs no bridge), mqtt://[user:password@]host:1883, "
                         "or mqtts://host:8883?ca=/path/ca.pem for TLS; optional client_id= "
                         "and session_expiry= (seconds, default 3600). See docs/mqtt.md.")
    dls_quota_bytes: int = _setting(0, "Data lake storage quota of each tenant in bytes (0: "
                                    "unlimited); `pyconnector dlsquota set` overrides it per "
                                    "tenant.", minimum=0)
    jwt_max_lifetime_seconds: int = _setting(3600, "Longest lifetime (exp - iat) a JWT may "
                                             "have; tokens that claim more are refused with "
                                             "401.", minimum=1)
    statement_timeout_seconds: float = _setting(
        30, "Longest a single database statement of a request may run before it is "
        "cancelled (the request then gets 503); 0: no limit. Bulk writes (CSV ingests, "
        "cascade deletes) are not bounded.", minimum=0)
    max_connections: int = _setting(1000, "Concurrent connections served; a connection past "
                                    "the limit gets 503 at once and is closed.", minimum=1)
    max_header_bytes: int = _setting(64 * 1024, "Largest request line plus headers accepted; "
                                     "bigger requests get 431 and the connection is closed.",
                                     minimum=1)
    header_timeout_seconds: int = _setting(
        15, "Time a client has to send a request's line and headers, from its first byte; "
        "slower requests get 408 and the connection is closed.", minimum=1)
    body_timeout_seconds: int = _setting(
        60, "Longest pause between two parts of a request body; a stalled upload gets 408 "
        "and is cut (time the server itself holds the body back is not counted).", minimum=1)
    keep_alive_seconds: int = _setting(5, "How long a connection with no request in progress "
                                       "(a new one, or one between requests) stays open.",
                                       minimum=0)
    sweep_grace_seconds: int = _setting(3600, "Age after which an interrupted upload's "
                                        "temporary file, or a blob no catalog row points at, "
                                        "is removed.", minimum=0)
    sweep_interval_seconds: int = _setting(600, "How often the sweeper runs (it also runs at "
                                           "start); 0 disables the periodic run.", minimum=0)
    executor: str = _setting("local://", "Where tasks run: local:// (subprocesses of the "
                             "platform; ?concurrency=N, default the number of CPUs) or "
                             "celery://user:password@host:5672/vhost (workers started with "
                             "`pyconnector worker`, through RabbitMQ). See docs/tasks.md.")
    public_url: str = _setting("", "The address task workers (celery executor) reach this "
                               "platform at, e.g. http://10.0.0.5:8000: empty for "
                               "http://<host>:<port>, with 127.0.0.1 for a wildcard host.")
    task_dir: str = _setting("", "Directory for the working directories of running tasks "
                             "(emptied as each run ends): empty for a directory under the "
                             "system's temporary directory. Never inside the data dir: a "
                             "task must not reach the platform's files.")
    task_wall_seconds: int = _setting(3600, "Longest a task run may take (wall clock, paused "
                                      "time not counted); it is then killed.", minimum=1)
    task_cpu_seconds: int = _setting(3600, "CPU time a task run may use.", minimum=1)
    task_memory_mb: int = _setting(1024, "Resident memory a task run (with its children) may "
                                   "use, in MiB.", minimum=16)
    task_catch_up_seconds: int = _setting(
        3600, "A scheduled slot missed (the platform was down) by less than this fires once "
        "when the platform is back; older ones are skipped.", minimum=0)
    task_owner_timeout_seconds: int = _setting(
        60, "How long a platform process may go without a heartbeat (every few seconds, in "
        "the database) before the others take it for stopped and mark its unfinished runs "
        "lost. Matters when several processes share PostgreSQL.", minimum=1)
    task_bundle_mb: int = _setting(256, "Largest deploy (the file and the unpacked dependency "
                                   "and input zips together), in MiB.", minimum=1)
    # Not a setting: room for values a caller (tests, embedding code) hands to the app.
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, args: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
        """Arguments first (``None`` means not given), then environment, then defaults.

        Raises :class:`SettingsError` naming the option (``--port``) or the variable
        (``PYCONNECTOR_PORT``) whose value does not fit.
        """
        args = args or {}
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            if args.get(s.name) is not None:
                values[s.name] = s.convert(args[s.name], s.option)
            elif environ.get(s.env) is not None:
                values[s.name] = s.convert(environ[s.env], s.env)
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


def _table() -> tuple[Setting, ...]:
    hints = get_type_hints(Settings)
    return tuple(Setting(f.name, f.default, f.metadata["help"], hints[f.name],
                         f.metadata["minimum"], f.metadata["maximum"], f.metadata["choices"])
                 for f in fields(Settings) if "help" in f.metadata)


SETTINGS: tuple[Setting, ...] = _table()


DOC_START, DOC_END = "<!-- settings:start -->", "<!-- settings:end -->"


def settings_markdown() -> str:
    """The settings table of docs/configuration.md (regenerate with `make docs`)."""
    lines = ["| Setting | CLI option | Environment | Default | Accepts | Meaning |",
             "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default != "" else "(empty)"
        lines.append(f"| {s.name} | `{s.option}` | `{s.env}` | {default} | {s.expected()} | "
                     f"{s.help} |")
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

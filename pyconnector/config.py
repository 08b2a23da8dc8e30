"""Connector configuration: from a file, keyword arguments or the environment.

The file is INI. The keys may stand under a ``[pyconnector]`` section or, as TCUP's
``ConfigFile.conf`` does, bare at the top::

    [pyconnector]
    URL = http://127.0.0.1:8080
    api_key = 4e5063…
    # optional
    jwt_key = …          ; the tenant's symmetric key: turns on JWT mode
    dls_key = …          ; your Data Lake user key (x-dls-key)
    timeout = 30         ; seconds
    retries = 3          ; retries of idempotent calls on connection errors and 502/503/504
                         ; (and of any call answered 429), waiting as Retry-After says
    verify = true        ; TLS certificate check, or a CA bundle file or directory

A value may be quoted (``URL = "http://127.0.0.1:8080"``): the quotes are dropped.

Keyword arguments win over the file, which wins over ``PYCONNECTOR_URL``,
``PYCONNECTOR_API_KEY``, ``PYCONNECTOR_JWT_KEY``, ``PYCONNECTOR_DLS_KEY``, ``PYCONNECTOR_TIMEOUT``….
"""

from __future__ import annotations

import configparser
import hashlib
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

SECTION = "pyconnector"
# Spellings accepted for each key: TCUP's samples write URL and api_key.
ALIASES = {
    "url": "url", "base_url": "url", "api_key": "api_key", "apikey": "api_key",
    "x-api-key": "api_key", "jwt_key": "jwt_key", "symmetric_key": "jwt_key",
    "jwt_secret": "jwt_key", "dls_key": "dls_key", "x-dls-key": "dls_key",
    "timeout": "timeout", "retries": "retries", "verify": "verify",
}


@dataclass(frozen=True)
class Config:
    """Where the platform is and how to authenticate to it."""

    url: str
    api_key: str
    jwt_key: str | None = None
    dls_key: str | None = None
    timeout: float = 30.0
    retries: int = 3
    verify: bool | str = True

    def __repr__(self) -> str:  # never print secrets: a key shows as its fingerprint
        dls = f", dls_key={fingerprint(self.dls_key)}" if self.dls_key else ""
        return (f"Config(url={self.url!r}, api_key={fingerprint(self.api_key)}, "
                f"jwt={'on' if self.jwt_key else 'off'}{dls})")


def fingerprint(secret: str) -> str:
    """A key's short, stable name that does not reveal it: ``sha256:`` and the first 8
    hex digits of its SHA-256 (tell two keys apart in a repr or a log, never the key)."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = ALIASES.get(key.strip().lower())
        if name is not None and value not in (None, ""):
            out[name] = value.strip() if isinstance(value, str) else value
    return out


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in the INI file at ``path``, under their canonical names."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.strerror}") from exc
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        if not any(line.strip().startswith("[") for line in text.splitlines()):
            text = f"[{SECTION}]\n{text}"
        parser.read_string(text, source=str(p))
    except configparser.Error as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid INI: {exc}") from exc
    sections = parser.sections()
    section = SECTION if parser.has_section(SECTION) else (sections[0] if sections else None)
    return _normalise({k: _unquote(v) for k, v in parser[section].items()}) if section else {}


def _unquote(value: str) -> str:
    """``"http://…"`` or ``'…'`` as ``http://…``: INI takes quotes literally, but people
    write them (as in Python or shell), and no setting's value starts and ends with one."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip()
    return value


def load(path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Config:
    """Resolve the configuration: keywords, then the file, then the environment."""
    env = _normalise({k[len("PYCONNECTOR_"):]: v for k, v in os.environ.items()
                      if k.startswith("PYCONNECTOR_")})
    values = {**env, **(read_file(path) if path else {}), **_normalise(kwargs)}
    missing = [k for k in ("url", "api_key") if not values.get(k)]
    if missing:
        names = " and ".join("URL" if k == "url" else k for k in missing)
        raise ConfigError(f"missing {names}: pass them as keywords, in a config file, or as "
                          "PYCONNECTOR_URL / PYCONNECTOR_API_KEY")
    try:
        values["timeout"] = float(values.get("timeout", 30.0))
        values["retries"] = int(values.get("retries", 3))
    except ValueError as exc:
        raise ConfigError(f"timeout and retries must be numbers: {exc}") from exc
    verify = values.get("verify", True)
    if isinstance(verify, str) and verify.lower() in ("true", "false", "yes", "no", "1", "0"):
        verify = verify.lower() in ("true", "yes", "1")
    values["verify"] = verify
    values["url"] = str(values["url"]).rstrip("/")
    known = {f.name for f in fields(Config)}
    return Config(**{k: v for k, v in values.items() if k in known})

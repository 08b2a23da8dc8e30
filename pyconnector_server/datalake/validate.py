"""Checks on DLS input. Every failure is a 400 naming the field; nothing is written.

Names never reach a file system or a bucket (blobs are stored under opaque keys), but
they are checked as if they did: a name that could escape a directory — ``..``, an
absolute path, a slash or backslash, one encoded (``%2F``), a NUL or any control
character — is refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import bad_request

MODES = ("RESTRICT", "OVERWRITE", "APPEND", "ARCHIVE")
PERMISSIONS = "RWD"
MAX_DEPTH = 10
MAX_METADATA = 100
SYSTEM_PREFIX = "dls:"
PRIVATE_PREFIX = "private@"
# A file URI: a tenant name (255), a user name (64) and a path (dls_file.path, 600).
MAX_PATH = 600
MAX_URI = 255 + 1 + 64 + 1 + MAX_PATH

# TCUP: directories `^(/([\w-]+))+$` (<= 255 chars); savepoints
# `^((/)?([\w-.:]*[a-zA-Z][\w-.:]*)+){1,10}$` (<= 50 chars): up to 10 segments of
# `[\w-.:]`, each with a letter. TCUP's regex nests quantifiers (it backtracks
# exponentially on a long bad value), so it is checked one segment at a time.
_DIR_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_SAVEPOINT_SEGMENT = re.compile(r"^[A-Za-z0-9_.:-]*[A-Za-z][A-Za-z0-9_.:-]*$")
MAX_SAVEPOINT = 50
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
_RELATION = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
_META_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,254}$")
_META_PATTERN = re.compile(r"^[A-Za-z0-9_.:*-]{1,255}$")  # a key in a search
# Control characters, and lone surrogates (JSON can carry "\ud800"; no database stores one).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# A media type's essence (RFC 9110 tokens); 127 + 1 + 127 fits dls_file.content_type.
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}$")
MAX_META_KEY = 255
# A private key is stored as "<user id>@<name>" in the 255 characters of dls_meta.key:
# names leave room for the longest id (10 digits) and the "@".
MAX_PRIVATE_KEY = MAX_META_KEY - len("2147483647@")
MAX_META_VALUE = 1024
# Users named in one share, relations in one request: each is a lookup and a row.
MAX_SHARE_USERS = 100
MAX_RELATIONS = 1000
_ENCODED = re.compile(r"%(2f|5c|00|2e)", re.IGNORECASE)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected a string", field)
    if _CONTROL.search(value):
        raise bad_request(f"{field}: must not contain NUL, control characters or lone "
                          "surrogates", field)
    if _ENCODED.search(value):
        raise bad_request(f"{field}: must not contain encoded slashes, dots or NUL "
                          "(%2F, %5C, %2E, %00)", field)
    return value


def filename(value: Any, field: str = "filename") -> str:
    """A file name: 1-255 characters, no slash or backslash, not ``.`` or ``..``."""
    name = _text(value, field)
    if not name or len(name) > 255:
        raise bad_request(f"{field}: must be 1 to 255 characters", field)
    if "/" in name or "\\" in name:
        raise bad_request(f"{field}: must be a plain name, without '/' or '\\' "
                          "(give the directory and savepoint separately)", field)
    if name in (".", "..") or name.strip() != name or not name.strip("."):
        raise bad_request(f"{field}: {name!r} is not a usable file name", field)
    return name


def directory(value: Any, field: str = "directory") -> str:
    """A directory, ``D1/D2`` or as TCUP writes it ``/D1/D2``: up to 10 segments of
    letters, digits, ``_`` and ``-``; ``""`` or ``/`` is the user's root."""
    if value is None:
        return ""
    text = _text(value, field)
    if text in ("", "/"):
        return ""
    # One leading slash is TCUP's way of writing a directory of the user's area.
    body = text[1:] if text.startswith("/") else text
    body = body[:-1] if body.endswith("/") else body
    if len(body) > 255:
        raise bad_request(f"{field}: at most 255 characters", field)
    segments = body.split("/")
    if len(segments) > MAX_DEPTH:
        raise bad_request(f"{field}: at most {MAX_DEPTH} levels", field)
    for segment in segments:
        if segment in ("", ".", ".."):
            raise bad_request(f"{field}: {text!r} has an empty, '.' or '..' segment "
                              "(paths stay inside your area)", field)
        if not _DIR_SEGMENT.match(segment):
            raise bad_request(f"{field}: segment {segment!r} may only hold letters, digits, "
                              "'_' and '-'", field)
    return "/".join(segments)


def savepoint(value: Any, field: str = "savepoint") -> str:
    """A savepoint, ``v1`` or ``run/v1`` (TCUP also writes ``/run/v1``): at most 50
    characters, up to 10 segments of letters, digits, ``_ . : -``, each with a letter.
    One leading slash is dropped; ``""`` or ``/`` is no savepoint."""
    if value is None or value in ("", "/"):
        return ""
    text = _text(value, field)
    if len(text) > MAX_SAVEPOINT:
        raise bad_request(f"{field}: at most {MAX_SAVEPOINT} characters", field)
    body = text[1:] if text.startswith("/") else text
    segments = body.split("/")
    if len(segments) > MAX_DEPTH:
        raise bad_request(f"{field}: at most {MAX_DEPTH} segments", field)
    for segment in segments:
        if not _SAVEPOINT_SEGMENT.match(segment):
            raise bad_request(f"{field}: {text!r}: each '/'-separated segment must be "
                              "letters, digits, '_', '.', ':' or '-' holding a letter (no "
                              "empty, '.' or '..' segment)", field)
    return body


def user_name(value: Any, field: str = "user") -> str:
    text = _text(value, field)
    if not _USER.match(text):
        raise bad_request(f"{field}: {text!r} must be 1 to 64 letters, digits, '_', '.', "
                          "'@' or '-'", field)
    return text


def relation_name(value: Any, field: str = "relation") -> str:
    text = _text(value, field)
    if not _RELATION.match(text):
        raise bad_request(f"{field}: {text!r} must start with a letter and hold up to 64 "
                          "letters, digits, '_', '.', ':' or '-'", field)
    return text


def comment(value: Any, field: str = "comment") -> str:
    if value is None:
        return ""
    text = _text(value, field)
    if len(text) > 255:
        raise bad_request(f"{field}: at most 255 characters", field)
    return text


def content_type(value: Any, field: str = "content-type") -> str:
    """A media type ``type/subtype`` (parameters dropped), as stored with a file."""
    text = _text(value, field).split(";")[0].strip()
    if not _MEDIA_TYPE.match(text):
        raise bad_request(f"{field}: {text[:80]!r} is not a media type: type/subtype, "
                          "each at most 127 letters, digits or !#$&^_.+-", field)
    return text


def mode(value: Any, field: str = "mode") -> str:
    if value is None or value == "":
        return "RESTRICT"
    if not isinstance(value, str) or value.upper() not in MODES:
        raise bad_request(f"{field}: must be one of {', '.join(MODES)}", field)
    return value.upper()


def permissions(value: Any, field: str = "permissions") -> str:
    """``R``, ``W``, ``D`` in any combination (``RW``, ``RWD``); R is implied by W and D."""
    if not isinstance(value, str) or not value or set(value.upper()) - set(PERMISSIONS):
        raise bad_request(f"{field}: letters of R (read), W (write), D (delete)", field)
    letters = set(value.upper()) | {"R"}
    return "".join(p for p in PERMISSIONS if p in letters)


@dataclass(frozen=True)
class Uri:
    """A file URI: ``<tenant>/<user>/<path>``, the path ``[directory/][savepoint/]filename``."""

    tenant: str
    user: str
    path: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.user}/{self.path}"


def uri(value: Any, field: str = "file-uri") -> Uri:
    """A file URI ``<tenant>/<user>/<path>``, no longer than the catalog can hold."""
    text = _text(value, field)
    if len(text) > MAX_URI:
        raise bad_request(f"{field}: at most {MAX_URI} characters (<tenant>/<user>/<path>, "
                          f"the path at most {MAX_PATH})", field)
    if text.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", text):
        raise bad_request(f"{field}: {text!r} must be relative: <tenant>/<user>/"
                          "[<directory>/][<savepoint>/]<filename>", field)
    parts = text.split("/")
    if len(parts) < 3:
        raise bad_request(f"{field}: {text!r} must be <tenant>/<user>/[<directory>/]"
                          "[<savepoint>/]<filename>", field)
    if "\\" in text or any(p in ("", ".", "..") for p in parts):
        raise bad_request(f"{field}: {text!r} has an empty, '.' or '..' segment or a "
                          "backslash", field)
    # tenant, user, a directory's and a savepoint's segments, the filename
    if len(parts) > 2 * MAX_DEPTH + 3:
        raise bad_request(f"{field}: too many segments", field)
    user_name(parts[1], field)
    filename(parts[-1], field)
    if len(text) - len(parts[0]) - len(parts[1]) - 2 > MAX_PATH:
        raise bad_request(f"{field}: the path after <tenant>/<user>/ is at most {MAX_PATH} "
                          "characters", field)
    return Uri(parts[0], parts[1], "/".join(parts[2:]))


def join_path(directory: str, savepoint: str, filename: str) -> str:
    return "/".join(p for p in (directory, savepoint, filename) if p)


# -- metadata ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MetaItem:
    key: str          # as written, e.g. "site" or "private@note"
    value: str
    private: bool

    @property
    def name(self) -> str:
        """The key without ``private@``."""
        return self.key[len(PRIVATE_PREFIX):] if self.private else self.key


def split_items(text: str) -> list[str]:
    """Split ``k1=v1,k2='a,b'`` at the commas outside quotes."""
    out, buf, quote = [], [], ""
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    out.append("".join(buf))
    return out


def meta_key(raw: str, field: str, pattern: bool = False) -> tuple[str, bool]:
    """A metadata key as written (``site``, ``private@note``) and whether it is private.
    ``pattern``: a key in a search, which may hold ``*`` and name the platform's keys.
    ``@`` is refused but in the ``private@`` prefix: private keys are stored as
    ``<user id>@key``, so a key such as ``1@note`` would read as user 1's private one."""
    private = raw.startswith(PRIVATE_PREFIX)
    name = raw[len(PRIVATE_PREFIX):] if private else raw
    if "@" in name:
        raise bad_request(f"{field}: key {raw[:80]!r}: '@' is allowed only in the prefix "
                          "'private@' (your own private keys)", field)
    if pattern:
        if not _META_PATTERN.match(name):
            raise bad_request(f"{field}: key {raw[:80]!r} must be letters, digits, '_', '.', "
                              "':', '-' or '*' (at most 255), optionally after 'private@'",
                              field)
    elif name.startswith(SYSTEM_PREFIX):
        raise bad_request(f"{field}: keys starting with '{SYSTEM_PREFIX}' belong to the "
                          "platform", field)
    elif not _META_KEY.match(name):
        raise bad_request(f"{field}: key {raw!r} must be letters, digits, '_', '.', ':' or "
                          "'-' (at most 255), optionally after 'private@'", field)
    if private and len(name) > MAX_PRIVATE_KEY:
        raise bad_request(f"{field}: a private key is at most {MAX_PRIVATE_KEY} characters "
                          "after 'private@'", field)
    return raw, private


def metadata(values: list[str] | None, field: str = "metadata") -> list[MetaItem]:
    """Metadata from TCUP's ``key=value`` strings (each may hold several, comma-separated;
    a value may be quoted to hold a comma). A key may appear once."""
    items: dict[str, MetaItem] = {}
    n = 0
    for raw in values or []:
        if not isinstance(raw, str):
            raise bad_request(f"{field}: expected 'key=value' strings", field)
        for part in split_items(raw):
            f = f"{field}[{n}]"
            n += 1
            part = part.strip()
            if not part:
                continue
            _text(part, f)
            key, eq, value = part.partition("=")
            if not eq:
                raise bad_request(f"{f}: {part!r} is not key=value", f)
            key, private = meta_key(key.strip(), f)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            elif value[:1] in ("'", '"') or value[-1:] in ("'", '"'):
                raise bad_request(f"{f}: unbalanced quote in {part!r}", f)
            if len(value) > MAX_META_VALUE:
                raise bad_request(f"{f}: value longer than {MAX_META_VALUE} characters", f)
            if key in items:
                raise bad_request(f"{f}: key {key!r} given twice", f)
            items[key] = MetaItem(key, value, private)
    if len(items) > MAX_METADATA:
        raise bad_request(f"{field}: at most {MAX_METADATA} keys per file", field)
    return list(items.values())


def number(value: str) -> float | None:
    """``value`` as a finite number, if it is one."""
    try:
        num = float(value)
    except ValueError:
        return None
    return num if math.isfinite(num) else None


def uri_text(value: Any, field: str = "file-uri") -> str:
    """``value`` as given, once :func:`uri` accepts it (the store reads it again)."""
    uri(value, field)
    return str(value)

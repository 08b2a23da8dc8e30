"""Unpacking a task's bundle (its dependency zip) into the task's directory, safely.

A zip from a client is hostile until proven otherwise: names that climb out of the
directory (``../``, ``/etc/…``, ``C:\\…``), symbolic links that point anywhere, headers that
promise a few bytes and inflate to gigabytes. :func:`unpack_zip` checks the whole archive
before it writes a byte, then extracts counting the bytes it writes, so a lying header
cannot get past either; when anything fails, what it wrote is removed again.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import stat
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..errors import bad_request

#: the most a dependency zip may unpack to, all entries together (uncompressed): a task's
#: libraries and data files, not a data set (those belong in the Data Lake)
MAX_ZIP_BYTES = 512 << 20
#: the most entries (files and directories) a dependency zip may hold: the central
#: directory is read into memory whole, and every entry is a file created on disk
MAX_ZIP_ENTRIES = 10_000
#: the longest entry name, in UTF-8 bytes; Linux refuses paths past 4096 and components
#: past 255 bytes with an OSError that would otherwise surface as a 500
MAX_NAME_BYTES = 1024
MAX_COMPONENT_BYTES = 255

#: how much is read and written at a time while extracting
_CHUNK = 1 << 20
#: compressions zipfile can read; anything else (deflate64, …) fails only on open
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DRIVE = re.compile(r"^[A-Za-z]:")
_ENCRYPTED = 0x1  # general purpose flag bit 0
# The records that say where the central directory is (APPNOTE 4.3.12-4.3.16).
_END = b"PK\x05\x06"  # end of central directory: its size at byte 12 (uint32)
_END_MIN = 22
_END64_LOCATOR = b"PK\x06\x07"  # 20 bytes, just before the end record
_END64 = b"PK\x06\x06"  # 56 bytes (and more), before the locator: its size at byte 40
_ENTRY = b"PK\x01\x02"  # a central directory entry: 46 bytes, then name, extra, comment


def _size(n: int) -> str:
    """``n`` bytes for people: ``512 MiB``, ``1.5 KiB``, ``12 bytes``."""
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.4g} {unit}"


def _entry_path(info: zipfile.ZipInfo, field: str) -> PurePosixPath:
    """The entry's path relative to the destination, or a 400 saying what is wrong."""
    raw = info.orig_filename  # before zipfile cuts it at a NUL
    shown = raw.replace("\0", "\\0")

    def refuse(why: str) -> Exception:
        return bad_request(f"{field}: entry '{shown}' {why}", field)

    if "\0" in raw:
        raise refuse("has a NUL character in its name")
    if "\\" in raw:
        # "..\evil.py" is a plain name here but a parent directory on Windows, where the
        # zip may have been made; a backslash has no business in a bundle's file names.
        raise refuse("has a backslash in its name; zip entries separate directories with '/'")
    if raw.startswith("/") or _DRIVE.match(raw):
        raise refuse("is an absolute path; entries must be relative to the task's directory")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise refuse("escapes the task's directory")
    if not parts:
        raise refuse("has an empty name")
    if len(raw.encode()) > MAX_NAME_BYTES or any(
            len(p.encode()) > MAX_COMPONENT_BYTES for p in parts):
        raise refuse(f"has a name longer than {MAX_NAME_BYTES} bytes "
                     f"(or a part longer than {MAX_COMPONENT_BYTES})")
    return PurePosixPath(*parts)


def _check_entry(info: zipfile.ZipInfo, name: str, field: str) -> None:
    """Only plain files and directories, unencrypted, in a compression we can read."""

    def refuse(why: str) -> Exception:
        return bad_request(f"{field}: entry '{name}' {why}", field)

    mode = info.external_attr >> 16  # Unix mode, when the zip was made on Unix
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise refuse("is a symbolic link; a bundle may hold only files and directories")
    if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise refuse("is not a regular file or directory")
    if info.flag_bits & _ENCRYPTED:
        raise refuse("is encrypted; upload the bundle without a password")
    if info.compress_type not in _METHODS:
        raise refuse(f"uses a compression zipfile cannot read (method {info.compress_type})")


def _count_entries(fp: BinaryIO, most: int) -> int:
    """The entries of the zip ``fp``'s central directory, counted up to ``most + 1`` (0 when
    the records cannot be found: zipfile then says what is wrong).

    zipfile reads the whole central directory into objects before anyone can count them,
    and an archive of tiny entries holds a great many (a million in 80 MiB: seconds and half
    a GiB to read); the count in the end record does not bound it either, since zipfile
    reads entries for as many bytes as the record says the directory takes."""
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    tail_start = max(0, size - _END_MIN - 0xFFFF)  # the record, then a comment of <64 KiB
    fp.seek(tail_start)
    tail = fp.read()
    at = tail.rfind(_END)
    if at < 0 or len(tail) - at < _END_MIN:
        return 0
    end = tail_start + at
    (cd_size,) = struct.unpack_from("<L", tail, at + 12)
    start = end - cd_size
    if end >= 20 + 56:
        fp.seek(end - 20)
        if fp.read(4) == _END64_LOCATOR:
            fp.seek(end - 20 - 56)
            record = fp.read(56)
            if record[:4] == _END64:
                (cd_size,) = struct.unpack_from("<Q", record, 40)
                start = end - 20 - 56 - cd_size
    if start < 0:
        return 0
    count, pos, stop = 0, start, start + cd_size
    while pos + 46 <= stop and count <= most:
        fp.seek(pos)
        header = fp.read(46)
        if len(header) < 46 or header[:4] != _ENTRY:
            break
        name, extra, comment = struct.unpack_from("<3H", header, 28)
        pos += 46 + name + extra + comment
        count += 1
    return count


def _open(data: bytes | BinaryIO | str | os.PathLike[str], field: str,
          max_entries: int) -> zipfile.ZipFile:
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            count = _count_entries(fh, max_entries)
    else:
        count = _count_entries(source, max_entries)
        source.seek(0)
    if count > max_entries:
        raise bad_request(f"{field}: the archive holds at least {count} entries, more than "
                          f"the limit of {max_entries}", field)
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise bad_request(f"{field}: not a zip archive ({exc})", field) from exc


def unpack_zip(data: bytes | BinaryIO | str | os.PathLike[str], dest: Path, field: str, *,
               max_bytes: int = MAX_ZIP_BYTES, max_entries: int = MAX_ZIP_ENTRIES) -> list[str]:
    """Unpack the zip ``data`` (its bytes, a seekable binary file, or a path) into ``dest``
    (created if missing); the relative paths of the files unpacked, in the archive's order.

    Every check runs on the whole archive before anything is written, and every failure
    is an :class:`~pyconnector_server.errors.APIError` 400 naming ``field``: not a zip;
    more than ``max_entries`` entries; an entry that is absolute, climbs out with ``..``,
    has a backslash or a drive letter, or resolves outside ``dest`` (through a symbolic
    link already there); a symbolic link or other non-regular entry; an encrypted entry;
    the same name twice, or a name both a file and a directory; a file that would replace
    one already in ``dest``; more than ``max_bytes`` uncompressed by the headers. The
    extraction then counts what it writes against the headers and ``max_bytes`` again,
    and on any failure removes what it wrote.
    """
    with _open(data, field, max_entries) as archive:
        infos = archive.infolist()
        if len(infos) > max_entries:  # zipfile's own count, should the walk stop short
            raise bad_request(f"{field}: the archive holds {len(infos)} entries, "
                              f"more than the limit of {max_entries}", field)
        plan = _plan(infos, dest, field, max_bytes)
        return _extract(archive, plan, dest, field, max_bytes)


def _plan(infos: list[zipfile.ZipInfo], dest: Path, field: str,
          max_bytes: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every entry; the (entry, relative path) pairs to extract."""
    root = dest.resolve()
    plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    files: dict[PurePosixPath, str] = {}
    dirs: dict[PurePosixPath, str] = {}
    total = 0
    for info in infos:
        rel = _entry_path(info, field)
        name = info.filename
        _check_entry(info, name, field)
        target = (root / rel).resolve()
        if target != root and root not in target.parents:
            raise bad_request(f"{field}: entry '{name}' escapes the task's directory", field)
        if info.is_dir():
            if rel in files:
                raise bad_request(f"{field}: entry '{name}' is both a file and a directory", field)
            dirs.setdefault(rel, name)
        else:
            if rel in files:
                raise bad_request(f"{field}: entry '{name}' is in the archive twice "
                                  f"(also as '{files[rel]}')", field)
            if rel in dirs:
                raise bad_request(f"{field}: entry '{name}' is both a file and a directory", field)
            files[rel] = name
            total += info.file_size
        for parent in rel.parents:
            if parent == PurePosixPath("."):
                break
            if parent in files:
                raise bad_request(f"{field}: entry '{name}' needs '{files[parent]}' to be a "
                                  "directory, but it is a file", field)
            dirs.setdefault(parent, name)
        plan.append((info, rel))
    if total > max_bytes:
        raise bad_request(f"{field}: the archive unpacks to {_size(total)}, more than the "
                          f"limit of {_size(max_bytes)}", field)
    # What is in the way in dest: a file where the archive has a file or a directory, or
    # a directory where it has a file. Existing directories are merged into.
    for rel, name in files.items():
        if os.path.lexists(root / rel):
            raise bad_request(f"{field}: entry '{name}' would replace '{rel}', which is "
                              "already in the task's directory", field)
    for rel, name in dirs.items():
        path = root / rel
        if os.path.lexists(path) and not path.is_dir():
            raise bad_request(f"{field}: entry '{name}' needs '{rel}' to be a directory, but "
                              "the task's directory has a file there", field)
    return plan


def _extract(archive: zipfile.ZipFile, plan: list[tuple[zipfile.ZipInfo, PurePosixPath]],
             dest: Path, field: str, max_bytes: int) -> list[str]:
    created: list[Path] = []  # files and directories made here, in order, to undo

    def makedirs(path: Path) -> None:
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for p in reversed(missing):
            p.mkdir()
            created.append(p)

    written = 0
    unpacked: list[str] = []
    try:
        makedirs(dest)
        for info, rel in plan:
            target = dest / rel
            if info.is_dir():
                makedirs(target)
                continue
            makedirs(target.parent)
            entry_written = 0
            # "x": never follow or replace whatever appeared there since the checks
            with archive.open(info) as src, open(target, "xb") as out:
                created.append(target)
                while chunk := src.read(_CHUNK):
                    entry_written += len(chunk)
                    written += len(chunk)
                    # zipfile stops at the header's size today; this keeps the limit
                    # should it ever not (a header that lies about the size).
                    if entry_written > info.file_size or written > max_bytes:
                        raise bad_request(
                            f"{field}: entry '{info.filename}' unpacks to more than its "
                            f"header says; the limit is {_size(max_bytes)}", field)
                    out.write(chunk)
            if info.external_attr >> 16 & 0o111:
                target.chmod(0o755)  # scripts stay runnable; no set-uid and the like
            unpacked.append(rel.as_posix())
    except BaseException as exc:
        _undo(created)
        # A bad CRC, a local header that disagrees with the central directory, a
        # compressed stream that does not decompress: the client's archive is damaged.
        # bz2 reports bad data as an OSError without an errno; one with an errno is the
        # disk's (full, not permitted): ours, not the client's.
        damaged = isinstance(exc, (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError)) \
            or (isinstance(exc, OSError) and exc.errno is None)
        if damaged:
            raise bad_request(f"{field}: the archive is damaged ({exc})", field) from exc
        raise
    return unpacked


def _undo(created: list[Path]) -> None:
    for path in reversed(created):
        try:
            path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError:
            pass

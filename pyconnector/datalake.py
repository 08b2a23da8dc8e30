"""Data Lake Service connector: ``conn.Datalake()``.

Files are named by URIs ``<tenant>/<user>/[<directory>/][<savepoint>/]<filename>``
(see docs/datalake.md). Every call sends your DLS user key as ``x-dls-key``; the admin
calls (``createUser``…) need the tenant administrator's API key (role ``admin``) instead.
With no DLS key, calls go with the API key alone: the tenant administrator's key then acts
as the tenant's administrator user ``dlsadmin`` (the guide's ``connectors(api_key=…,
URL=…)``); any other key gets the server's 403 saying to send a DLS key.
"""

from __future__ import annotations

import io
import json
import mimetypes
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Literal, TypeAlias, cast, overload
from urllib.parse import quote

import httpx

from .config import fingerprint
from .errors import APIError, DataError, PyConnectorError, TransportError
from .http import CHUNK, HTTPCore, _progress
from .times import TimeLike

if TYPE_CHECKING:  # pandas loads on the first read that needs it
    import pandas as pd

    from .formats import JSON, JSONObject, JSONRecords, ResponseType, TextType

BASE = "/api/dls"
FILE_TYPES = ("file", "bytes")
# File name endings → how getFile(..., 'dataframe') reads them.
FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".parquet": "parquet",
           ".pq": "parquet", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}

Uris: TypeAlias = str | Iterable[str]
"""One file URI, or several."""
UriList: TypeAlias = list[str] | tuple[str, ...]
"""Several file URIs, in a container that is not itself a string (for the overloads)."""
Metadata: TypeAlias = dict[str, Any] | Iterable[str] | str | None
"""``{"site": "pune"}``, ``["site=pune"]`` or ``"site=pune,rate=5"``."""
FileType: TypeAlias = Literal["file", "bytes"]
Fetch: TypeAlias = Literal["directoryFirst", "fileFirst", "directoryOnly", "fileOnly"]
"""Which records :meth:`Datalake.exploreDirectory` lists, in which order."""
# The times of the DLS answers (``03-JUL-2015 13:10:00 UTC``): tz-aware UTC timestamps
# in DataFrames, ISO 8601 in tables and CSV.
TIMES = ("created-on", "updated-on", "commented-on")

# uploadFile sends files over this size through the resumable path, in chunks of
# RESUMABLE_CHUNK bytes (each one stored durably before the server answers it), and goes
# on from the last byte stored after a broken connection, MAX_RESUMES times at most.
RESUMABLE_BYTES = 8 << 20
RESUMABLE_CHUNK = 64 << 20
MAX_RESUMES = 8
# The server's 409s that mean "ask where the upload stands and go on from there".
_RESUME_KEYS = ("offset.mismatch", "upload.busy")


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def metadata_items(metadata: Metadata) -> list[str]:
    """``{"site": "pune"}``, ``["site=pune"]`` or ``"site=pune,rate=5"`` as TCUP's
    ``key=value`` strings; a value with a comma is quoted."""
    if metadata is None:
        return []
    if isinstance(metadata, str):
        return [metadata]
    if isinstance(metadata, dict):
        out = []
        for key, value in metadata.items():
            text = str(value)
            out.append(f"{key}='{text}'" if "," in text else f"{key}={text}")
        return out
    return [str(m) for m in metadata]


def _no_route(exc: APIError) -> bool:
    """Whether a 404/405 says the platform has no such path (not a DLS answer)."""
    return exc.status == 405 or exc.message.startswith("Not Found")


def _resumable_error(exc: APIError) -> bool:
    """Whether the server refused a chunk only for where it was: ask, and go on."""
    key = exc.body.get("key") if isinstance(exc.body, dict) else None
    return exc.status == 409 and (key in _RESUME_KEYS or exc.message.startswith(_RESUME_KEYS))


def _uris(fileUri: Uris) -> list[str]:  # noqa: N803
    uris = [fileUri] if isinstance(fileUri, str) else list(fileUri)
    if not uris:
        raise PyConnectorError("fileUri: give at least one file URI")
    return uris


def _format(uri: str, fmt: str | None) -> str:
    if fmt:
        if fmt.lower() not in set(FORMATS.values()):
            raise PyConnectorError(f"format must be one of csv, tsv, parquet, json, jsonl; "
                                   f"got {fmt!r}")
        return fmt.lower()
    suffix = PurePosixPath(uri).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"cannot tell how to read {uri!r} as a table from its name: pass "
                        "format='csv'|'tsv'|'parquet'|'json'|'jsonl', or use "
                        "responseType='file' or 'bytes'")
    return FORMATS[suffix]


class _BodyReader(io.RawIOBase):
    """A read-only file over a stream of byte chunks (an HTTP body as it arrives)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:  # a writable buffer (memoryview, bytearray)
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._view = memoryview(chunk)
        n = min(len(buffer), len(self._view))
        buffer[:n] = self._view[:n]
        self._view = self._view[n:]
        return n


def read_frame(path: str | os.PathLike[str] | IO[bytes], fmt: str, uri: str = "",
               **options: Any) -> pd.DataFrame:
    """A DataFrame of ``path`` (a file name or a binary file object) in format ``fmt``;
    :class:`DataError` (naming ``uri``) if pandas cannot read it."""
    import pandas as pd

    name = uri or str(path)
    frame: pd.DataFrame  # with **options, pandas-stubs cannot pick an overload: Any
    try:
        if fmt in ("csv", "tsv"):
            if fmt == "tsv":
                options.setdefault("sep", "\t")
            frame = pd.read_csv(path, **options)
        elif fmt == "parquet":
            # Parquet needs to seek to its footer: a body read as it arrives cannot.
            frame = pd.read_parquet(path if isinstance(path, (str, os.PathLike))
                                    else io.BytesIO(path.read()), **options)
        elif fmt == "jsonl":
            frame = pd.read_json(path, lines=True, **options)
        else:
            if isinstance(path, (str, os.PathLike)):
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
            else:
                data = json.load(io.TextIOWrapper(path, encoding="utf-8"))
            if (isinstance(data, dict) and data
                    and all(isinstance(v, list) for v in data.values())):
                frame = pd.DataFrame(data, **options)
            else:
                frame = pd.json_normalize(data, **options)
        return frame
    except (ValueError, OSError, TypeError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {name!r} as {fmt.upper()}: {first}") from exc


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A catalog record with its metadata as one ``k=v; k2=v2`` column, for tables."""
    out = {k: v for k, v in row.items() if k != "metadata"}
    if "metadata" in row:
        out["metadata"] = "; ".join(f"{m['name']}={m['value']}" for m in row["metadata"])
    return out


Columns: TypeAlias = Literal["all"] | Sequence[str] | None
"""Which columns a catalog table shows: ``None`` (default) a narrow set in ``table`` and
every column in ``dataframe`` and ``csv``; ``'all'`` every column; or a list of names."""
# A catalog record has 14 fields (a sha256, the permitted actions, metadata…): printed
# whole a search table runs ~300 characters wide. Tables show these unless asked.
SEARCH_COLUMNS = ("uri", "size-bytes", "created-on", "created-by")
EXPLORE_COLUMNS = ("type", "name", "size-bytes", "created-on", "created-by")


def _columns(response_type: str, columns: Columns, narrow: tuple[str, ...],
             rows: Callable[[Any], list[dict[str, Any]]]
             ) -> Callable[[Any], list[dict[str, Any]]]:
    """``rows`` keeping only the columns asked for (see :data:`Columns`); a name no
    record has raises, listing the names there are."""
    if isinstance(columns, str) and columns != "all":
        columns = [columns]
    if columns == "all" or (columns is None and response_type.lower() != "table"):
        return rows
    wanted = list(narrow if columns is None else columns)

    def pick(data: Any) -> list[dict[str, Any]]:
        records = rows(data)
        if columns is not None and records:
            known = dict.fromkeys(k for r in records for k in r)
            unknown = [c for c in wanted if c not in known]
            if unknown:
                raise PyConnectorError(f"columns: no {', '.join(map(repr, unknown))}; "
                                       f"the columns are {', '.join(known)} (or 'all')")
        # A file's name is its filename where the record has no name.
        return [{c: r.get(c, r.get("filename") if c == "name" else None) for c in wanted}
                for r in records]

    return pick


class Datalake:
    """Files, catalog, shares and relations of the platform's Data Lake Service.

    Reads take ``responseType``: ``'json'`` (default), ``'table'``, ``'dataframe'`` or
    ``'csv'``; :meth:`getFile` also takes ``'file'`` (save to disk) and ``'bytes'``.
    """

    def __init__(self, http: HTTPCore, dlsKey: str | None = None) -> None:  # noqa: N803
        self.http = http
        self.dls_key = dlsKey or http.config.dls_key

    def __repr__(self) -> str:
        # No DLS key: the tenant administrator's API key acts as dlsadmin.
        dls = fingerprint(self.dls_key) if self.dls_key else "none"
        return f"<Datalake {self.http.describe(BASE)} dls_key={dls}>"

    # -- plumbing -----------------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # No DLS key: the server decides (the tenant admin's API key acts as `dlsadmin`,
        # another key gets 403 naming the x-dls-key header).
        own = {"x-dls-key": self.dls_key} if self.dls_key else {}
        return {**own, **(extra or {})}

    def _call(self, method: str, path: str, **kwargs: Any) -> JSON:
        headers = self._headers(kwargs.pop("headers", None))
        return self.http.request(method, BASE + path, headers=headers, **kwargs)

    # The DLS endpoints answer one JSON object, or a list of them (207 per-item answers,
    # listings): the casts state that contract.
    def _object(self, method: str, path: str, **kwargs: Any) -> JSONObject:
        return cast("JSONObject", self._call(method, path, **kwargs))

    def _records(self, method: str, path: str, **kwargs: Any) -> JSONRecords:
        return cast("JSONRecords", self._call(method, path, **kwargs))

    def _admin(self, method: str, path: str, **kwargs: Any) -> JSONObject:
        # The administrator's calls go with the API key alone (no DLS key).
        return cast("JSONObject", self.http.request(method, BASE + path, **kwargs))

    @staticmethod
    def _render(data: JSON | pd.DataFrame, responseType: str,  # noqa: N803
                rows: Callable[[Any], Any] | None = None,
                times: tuple[str, ...] = ()) -> JSON | pd.DataFrame:
        from .formats import render

        return render(data, responseType, rows, times)

    # -- files ------------------------------------------------------------------------------------
    def uploadFile(self, filename: str | os.PathLike[str], directory: str | None = None,  # noqa: N802
                   savepoint: str | None = None, metadata: Metadata = None,
                   comment: str | None = None, mode: str = "RESTRICT",
                   name: str | None = None, fileUri: str | None = None,  # noqa: N803
                   progress: bool | None = None, resumable: bool | None = None) -> JSONObject:
        """Upload the local file ``filename`` (streamed, never read whole).

        It lands in your area as ``[directory/][savepoint/]name`` (``name`` defaults to the
        local file's name), or replaces/extends the file ``fileUri`` you may write.
        ``metadata``: ``{"site": "pune"}``, ``["site=pune"]`` or ``"site=pune,rate=5"``;
        a ``private@key`` is yours alone. ``mode``: ``RESTRICT`` (refuse if it exists),
        ``OVERWRITE``, ``APPEND`` or ``ARCHIVE``. A progress bar shows for files over 8 MiB
        on a terminal, or when ``progress=True``; it counts the bytes sent, and after a
        broken connection goes back to those the server stored. Answers ``{code, message,
        uri, size-bytes, sha256}``.

        Files over 8 MiB (``resumable=None``; ``True``: any size, ``False``: never) go
        through the resumable upload, unless ``fileUri`` is given: in chunks, each stored
        durably before the next; a broken connection is resumed from the last byte stored.
        """
        path = Path(filename)
        params = _drop_none({
            "directory": directory, "savepoint": savepoint, "comment": comment, "mode": mode,
            "metadata": metadata_items(metadata) or None, "file-uri": fileUri,
            "filename": None if fileUri else (name or path.name)})
        size = path.stat().st_size
        if fileUri is None and (size > RESUMABLE_BYTES if resumable is None else resumable):
            try:
                return self._upload_resumable(path, size, params, progress)
            except APIError as exc:
                if not _no_route(exc):
                    raise  # a platform without resumable uploads: the plain upload below
        ctype = mimetypes.guess_type(name or path.name)[0] or "application/octet-stream"
        return cast("JSONObject", self.http.upload(
            "POST", f"{BASE}/file", path, progress=progress, params=params,
            headers=self._headers({"content-type": ctype})))

    def _upload_resumable(self, path: Path, size: int, params: dict[str, Any],
                          progress: bool | None) -> JSONObject:
        """Open a resumable upload (afresh: a session left by another call may hold
        other bytes), send ``path`` in chunks, and after a broken connection (or a chunk
        the server says is at the wrong offset) ask the offset stored and go on there."""
        opened = self._object("POST", "/file/resumable",
                              params={**params, "sizeInBytes": size, "restart": "true"})
        uri = str(opened["uri"])
        offset: int | None = int(cast(int, opened["offset"]))
        where = {k: params[k] for k in ("directory", "savepoint") if k in params}
        status_path = "/file/status/" + quote(str(params["filename"]), safe="")
        resumes = 0
        with _progress(size, path.name, progress) as bar:
            shown = 0

            def show(position: int) -> None:
                nonlocal shown
                bar.update(position - shown)
                shown = position

            while True:
                try:
                    if offset is None:
                        offset = int(cast(int, self._object(
                            "GET", status_path, params=where)["offset"]))
                        show(offset)
                    if offset >= size:  # every byte is stored: ask for the file
                        return self._object("PUT", "/file/status",
                                            params={"file-uri": uri, "status": "UPLOADED"})
                    end = min(size, offset + RESUMABLE_CHUNK)
                    answer = self._put_chunk(uri, path, offset, end, size, show)
                    if end == size:
                        return answer  # the last chunk's answer is the upload's
                    offset = int(cast(int, answer["offset"]))
                    show(offset)
                except (TransportError, APIError) as exc:
                    if isinstance(exc, APIError) and not _resumable_error(exc):
                        raise
                    resumes += 1
                    if resumes > MAX_RESUMES:
                        raise
                    self.http._sleep(self.http._delay(resumes))
                    offset = None

    def _put_chunk(self, uri: str, path: Path, start: int, end: int, size: int,
                   show: Callable[[int], None]) -> JSONObject:
        """Send bytes ``[start, end)`` of ``path``, once (a broken chunk is resumed, not
        sent again whole); the bar counts each block once it is handed to the socket."""
        def body() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                fh.seek(start)
                sent = start
                while sent < end and (block := fh.read(min(CHUNK, end - sent))):
                    yield block
                    sent += len(block)
                    show(sent)

        headers = self._headers({
            "content-range": f"bytes {start}-{end - 1}/{size}",
            "content-length": str(end - start), "content-type": "application/octet-stream",
            **self.http._auth()})
        try:
            response = self.http.client.put(f"{BASE}/file/resumable", params={"file-uri": uri},
                                            content=body(), headers=headers)
        except httpx.TransportError as exc:
            raise TransportError(f"PUT {BASE}/file/resumable ({uri}, bytes {start}-"
                                 f"{end - 1}) interrupted: {exc}") from exc
        return cast("JSONObject", self.http.check(response))

    # What getFile gives: 'json' records, 'dataframe' a DataFrame, 'table'/'csv' text,
    # whatever the URIs; 'bytes' and 'file' one item for a URI string, a list for a list.
    @overload
    def getFile(self, fileUri: Uris, responseType: Literal["json"] = "json",
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> JSONRecords: ...
    @overload
    def getFile(self, fileUri: Uris, responseType: Literal["dataframe"],
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> pd.DataFrame: ...
    @overload
    def getFile(self, fileUri: Uris, responseType: TextType,
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> str: ...
    @overload
    def getFile(self, fileUri: str, responseType: Literal["bytes"],
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> bytes: ...
    @overload  # a list, even of one URI, gives a list
    def getFile(self, fileUri: UriList, responseType: Literal["bytes"],
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> list[bytes]: ...
    @overload
    def getFile(self, fileUri: Uris, responseType: Literal["bytes"],
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> bytes | list[bytes]: ...
    @overload
    def getFile(self, fileUri: str, responseType: Literal["file"],
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> Path: ...
    @overload
    def getFile(self, fileUri: UriList, responseType: Literal["file"],
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> list[Path]: ...
    @overload
    def getFile(self, fileUri: Uris, responseType: Literal["file"],
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,
                progress: bool | None = None, **readOptions: Any) -> Path | list[Path]: ...

    def getFile(self, fileUri: Uris,  # noqa: N802,N803
                responseType: ResponseType | FileType = "json",  # noqa: N803
                target: str | os.PathLike[str] | None = None, format: str | None = None,
                byteRange: tuple[int, int | None] | None = None,  # noqa: N803
                progress: bool | None = None, **readOptions: Any  # noqa: N803
                ) -> JSON | pd.DataFrame | bytes | list[bytes] | Path | list[Path]:
        """Files of the data lake, by URI (one, or a list).

        * ``'dataframe'`` (and ``'json'``, ``'table'``, ``'csv'``): the file's data, read
          by its name ending — CSV (``.csv``, ``.txt``, ``.tsv``), Parquet (``.parquet``)
          or JSON (``.json``, ``.jsonl``); ``format=`` overrides, and ``readOptions`` go
          to the pandas reader. Several URIs give one table of all their rows, with a
          ``fileUri`` column first.
        * ``'file'``: save to ``target`` and return the path. ``target`` is a directory
          (created if missing) when it ends with ``/``, already is one, or several URIs
          are given; else, for one URI, the file's path (its directory created if
          missing). Default: the current directory.
        * ``'bytes'``: the bytes (``byteRange=(start, end)``, end exclusive, for a part).

        ``'bytes'`` and ``'file'`` answer as they are asked: one value for a URI string,
        a list for a list of URIs (even of one).
        """
        uris = _uris(fileUri)
        rt = (responseType or "json").lower()
        range_header = self._range(byteRange)
        if rt == "bytes":
            out = [self._bytes(u, range_header) for u in uris]
            return out[0] if isinstance(fileUri, str) else out
        if rt == "file":
            paths = [self._save(u, self._dest(u, target, len(uris)), range_header, progress)
                     for u in uris]
            return paths[0] if isinstance(fileUri, str) else paths
        from .formats import check_response_type

        check_response_type(rt)
        import pandas as pd

        frames: list[pd.DataFrame] = []
        for uri in uris:
            fmt = _format(uri, format)
            with self._open(uri, range_header, progress) as body:
                # pandas parses while the rest of the body is still on its way.
                frame = read_frame(body, fmt, uri, **readOptions)
            if len(uris) > 1:
                frame.insert(0, "fileUri", uri)
            frames.append(frame)
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        return self._render(frame, rt)

    @overload
    def downloadFile(self, fileUri: str, target: str | os.PathLike[str] | None = None,
                     byteRange: tuple[int, int | None] | None = None,
                     progress: bool | None = None) -> Path: ...
    @overload
    def downloadFile(self, fileUri: UriList, target: str | os.PathLike[str] | None = None,
                     byteRange: tuple[int, int | None] | None = None,
                     progress: bool | None = None) -> list[Path]: ...
    @overload
    def downloadFile(self, fileUri: Uris, target: str | os.PathLike[str] | None = None,
                     byteRange: tuple[int, int | None] | None = None,
                     progress: bool | None = None) -> Path | list[Path]: ...

    def downloadFile(self, fileUri: Uris, target: str | os.PathLike[str] | None = None,  # noqa: N802,N803
                     byteRange: tuple[int, int | None] | None = None,  # noqa: N803
                     progress: bool | None = None) -> Path | list[Path]:
        """Save files to ``target`` and return the path, or the paths for several URIs
        (see :meth:`getFile` with ``responseType='file'``)."""
        return self.getFile(fileUri, "file", target=target, byteRange=byteRange,
                            progress=progress)

    @staticmethod
    def _range(byteRange: tuple[int, int | None] | None) -> dict[str, str]:  # noqa: N803
        if byteRange is None:
            return {}
        start, end = byteRange
        if start < 0 or (end is not None and end <= start):
            raise PyConnectorError(f"byteRange must be (start, end) with 0 <= start < end; "
                                   f"got {byteRange!r}")
        return {"range": f"bytes={start}-{'' if end is None else end - 1}"}

    @staticmethod
    def _dest(uri: str, target: str | os.PathLike[str] | None, count: int) -> Path:
        """Where ``uri`` is saved: in ``target`` when it is a directory (it ends with a
        separator, is one already, or several files go there), created if missing; else
        at ``target``, its directory created if missing."""
        name = PurePosixPath(uri).name
        if target is None:
            return Path.cwd() / name
        raw = os.fspath(target)
        t = Path(raw).expanduser()
        into = raw.endswith(("/", os.sep)) or t.is_dir() or count > 1
        folder = t if into else t.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PyConnectorError(f"target: cannot make directory {str(folder)!r}: "
                                   f"{exc.strerror}") from exc
        return t / name if into else t

    def _save(self, uri: str, dest: Path, range_header: dict[str, str],
              progress: bool | None) -> Path:
        return self.http.download(f"{BASE}/file", dest, progress=progress,
                                  params={"file-uri": uri},
                                  headers=self._headers(range_header))

    @contextmanager
    def _open(self, uri: str, range_header: dict[str, str],
              progress: bool | None) -> Iterator[io.BufferedReader]:
        """The file's bytes as a binary file object read from the network as it goes."""
        with self.http.stream("GET", f"{BASE}/file", params={"file-uri": uri},
                              headers=self._headers(range_header)) as response:
            total = int(response.headers.get("content-length", 0)) or None
            with _progress(total, PurePosixPath(uri).name, progress) as bar:
                def chunks() -> Iterator[bytes]:
                    for chunk in response.iter_bytes():
                        bar.update(len(chunk))
                        yield chunk

                yield io.BufferedReader(_BodyReader(chunks()), buffer_size=1 << 20)

    def _bytes(self, uri: str, range_header: dict[str, str]) -> bytes:
        return self.http.get_bytes(f"{BASE}/file", params={"file-uri": uri},
                                   headers=self._headers(range_header))

    def deleteFile(self, fileUri: Uris) -> JSONRecords:  # noqa: N802,N803
        """Delete files; one TCUP ``DlsResponse`` (``key, value, code, messages``) each."""
        return self._records("DELETE", "/file", params={"file-uri": _uris(fileUri)})

    def updateMetadata(self, fileUri: str, metadata: Metadata = None,  # noqa: N802,N803
                       remove: list[str] | None = None,
                       comment: str | None = None) -> JSONObject:
        """Set metadata (same forms as :meth:`uploadFile`), ``remove`` keys, or change
        the comment of a file you may write."""
        body = _drop_none({"metadata": metadata_items(metadata), "remove": remove,
                           "comment": comment})
        return self._object("PUT", "/file/metadata", params={"file-uri": fileUri}, json=body)

    # -- catalog ----------------------------------------------------------------------------------
    @overload
    def searchFile(self, text: str | None = None,
                   time: TimeLike | tuple[TimeLike, TimeLike] | list[TimeLike] | None = None,
                   size: str | list[str] | None = None, metadata: str | None = None,
                   filename: str | None = None, directory: str | None = None,
                   savepoint: str | None = None, user: str | None = None,
                   uri: str | None = None, ownFile: bool | None = None,
                   external: bool | None = None, transferred: bool | None = None,
                   deleted: bool | None = None, bundled: bool | None = None,
                   locked: bool | None = None,
                   sort: str | None = None, order: str | None = None,
                   pageNo: int | None = None, pageSize: int | None = None,
                   responseType: Literal["json"] = "json",
                   columns: Columns = None) -> JSONObject: ...
    @overload
    def searchFile(self, text: str | None = None,
                   time: TimeLike | tuple[TimeLike, TimeLike] | list[TimeLike] | None = None,
                   size: str | list[str] | None = None, metadata: str | None = None,
                   filename: str | None = None, directory: str | None = None,
                   savepoint: str | None = None, user: str | None = None,
                   uri: str | None = None, ownFile: bool | None = None,
                   external: bool | None = None, transferred: bool | None = None,
                   deleted: bool | None = None, bundled: bool | None = None,
                   locked: bool | None = None,
                   sort: str | None = None, order: str | None = None,
                   pageNo: int | None = None, pageSize: int | None = None,
                   responseType: Literal["dataframe"] = ...,
                   columns: Columns = None) -> pd.DataFrame: ...
    @overload
    def searchFile(self, text: str | None = None,
                   time: TimeLike | tuple[TimeLike, TimeLike] | list[TimeLike] | None = None,
                   size: str | list[str] | None = None, metadata: str | None = None,
                   filename: str | None = None, directory: str | None = None,
                   savepoint: str | None = None, user: str | None = None,
                   uri: str | None = None, ownFile: bool | None = None,
                   external: bool | None = None, transferred: bool | None = None,
                   deleted: bool | None = None, bundled: bool | None = None,
                   locked: bool | None = None,
                   sort: str | None = None, order: str | None = None,
                   pageNo: int | None = None, pageSize: int | None = None,
                   responseType: TextType = ...,
                   columns: Columns = None) -> str: ...

    def searchFile(self, text: str | None = None,  # noqa: N802
                   time: TimeLike | tuple[TimeLike, TimeLike] | list[TimeLike] | None = None,
                   size: str | list[str] | None = None, metadata: str | None = None,
                   filename: str | None = None, directory: str | None = None,
                   savepoint: str | None = None, user: str | None = None,
                   uri: str | None = None, ownFile: bool | None = None,  # noqa: N803
                   external: bool | None = None, transferred: bool | None = None,
                   deleted: bool | None = None, bundled: bool | None = None,
                   locked: bool | None = None,
                   sort: str | None = None, order: str | None = None,
                   pageNo: int | None = None, pageSize: int | None = None,  # noqa: N803
                   responseType: ResponseType = "json",  # noqa: N803
                   columns: Columns = None) -> JSON | pd.DataFrame:
        """Search the catalog (files you own or that are shared with you).

        ``metadata``: an expression such as ``"site='pune' & rate>=5"`` (``,`` is OR,
        ``&`` AND, brackets group, ``*`` is a wildcard); ``size``: ``">10mb"`` (or a
        list, all must hold); ``time``: a start, or ``(start, end)``, of the upload
        time; ``sort``: ``createdOn``, ``fileName``, ``size`` or ``updatedOn``. TCUP's
        flags: ``ownFile`` (True: yours; False: shared with you); ``external``,
        ``transferred``, ``deleted``, ``bundled`` and ``locked`` name states no file of
        this platform is in (False matches every file, True none). ``json``
        answers the page ``{page, page-size, total-page, count, result}``; the tabular
        types have one row per file of the page. ``columns``: a table shows ``uri``,
        ``size-bytes``, ``created-on`` and ``created-by`` unless given ``'all'`` or a
        list of names (which picks the columns of every tabular type).
        """
        times = None if time is None else [str(t) for t in (
            time if isinstance(time, (list, tuple)) else [time])]
        params = _drop_none({
            "text": text, "time": times, "size": size, "metadata": metadata,
            "filename": filename, "directory": directory, "savepoint": savepoint,
            "user": user, "uri": uri,
            **{name: None if flag is None else str(bool(flag)).lower() for name, flag in (
                ("ownFile", ownFile), ("external", external), ("transferred", transferred),
                ("deleted", deleted), ("bundled", bundled), ("locked", locked))},
            "sort": sort, "order": order, "pageNo": pageNo, "pageSize": pageSize})
        data = self._call("GET", "/catalog", params=params)
        return self._render(data, responseType, _columns(responseType, columns, SEARCH_COLUMNS,
                                     lambda d: [_flat(r) for r in d["result"]]),
                            TIMES)

    @overload
    def getFileInfo(self, fileUri: str, responseType: Literal["json"] = "json") -> JSONObject: ...
    @overload
    def getFileInfo(self, fileUri: str, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getFileInfo(self, fileUri: str, responseType: TextType) -> str: ...

    def getFileInfo(self, fileUri: str, responseType: ResponseType = "json"  # noqa: N802,N803
                    ) -> JSON | pd.DataFrame:
        """The catalog record of one file: size, owner, times, metadata, your permissions."""
        params = {"uri": fileUri}
        data = self._object("GET", "/catalog", params=params)
        if not data["result"]:
            from .errors import NotFoundError

            url = self.http.client.build_request("GET", f"{BASE}/catalog", params=params).url
            raise NotFoundError(404, f"not.found: no file {fileUri!r} is visible to you",
                                method="GET", url=str(url))
        return self._render(data["result"][0], responseType, _flat, TIMES)

    @overload
    def exploreDirectory(self, path: str | None = None, user: str | None = None,
                         pageNo: int | None = None, pageSize: int | None = None,
                         fetch: Fetch | None = None, nameRegex: str | None = None,
                         responseType: Literal["json"] = "json",
                         columns: Columns = None) -> JSONObject: ...
    @overload
    def exploreDirectory(self, path: str | None = None, user: str | None = None,
                         pageNo: int | None = None, pageSize: int | None = None,
                         fetch: Fetch | None = None, nameRegex: str | None = None,
                         responseType: Literal["dataframe"] = ...,
                         columns: Columns = None) -> pd.DataFrame: ...
    @overload
    def exploreDirectory(self, path: str | None = None, user: str | None = None,
                         pageNo: int | None = None, pageSize: int | None = None,
                         fetch: Fetch | None = None, nameRegex: str | None = None,
                         responseType: TextType = ...,
                         columns: Columns = None) -> str: ...

    def exploreDirectory(self, path: str | None = None, user: str | None = None,  # noqa: N802
                         pageNo: int | None = None, pageSize: int | None = None,  # noqa: N803
                         fetch: Fetch | None = None, nameRegex: str | None = None,  # noqa: N803
                         responseType: ResponseType = "json",  # noqa: N803
                         columns: Columns = None) -> JSON | pd.DataFrame:
        """A directory (default your root; ``user`` for another user's shared area): its
        subdirectories and its files, paged as one list. ``fetch``: ``directoryFirst``
        (default), ``fileFirst``, ``directoryOnly`` or ``fileOnly``; ``nameRegex``: only
        the records whose name matches (a search: anchor with ``^`` and ``$``). Tables
        have a ``type`` column (directory/file). A table
        shows ``type``, ``name``, ``size-bytes``, ``created-on`` and ``created-by``
        unless ``columns`` is ``'all'`` or a list of names (as :meth:`searchFile`'s)."""
        params = _drop_none({"path": path, "user": user, "pageNo": pageNo,
                             "pageSize": pageSize, "fetch": fetch, "nameRegex": nameRegex})
        data = self._call("GET", "/catalog/explore", params=params)

        def rows(d: JSONObject) -> JSONRecords:
            dirs = [{"type": "directory", **_flat(x)} for x in d["directories"]]
            files = [{"type": "file", **_flat(x)} for x in d["files"]]
            return files + dirs if fetch == "fileFirst" else dirs + files

        return self._render(data, responseType, _columns(
            responseType, columns, EXPLORE_COLUMNS, rows), TIMES)

    # -- sharing ---------------------------------------------------------------------------------
    def shareFile(self, fileUri: str, users: str | list[str],  # noqa: N802,N803
                  permissions: str = "R") -> JSONRecords:
        """Let other users of your tenant read (``R``), write (``W``) or delete (``D``)
        a file of yours; one DlsResponse per user."""
        return self._records("PUT", "/share", json={
            "file-uri": fileUri, "users": [users] if isinstance(users, str) else users,
            "permissions": permissions})

    def shareDirectory(self, directory: str, users: str | list[str],  # noqa: N802
                       permissions: str = "R") -> JSONRecords:
        """Share a directory of yours and everything below it (``""``: all your files)."""
        return self._records("PUT", "/share", json={
            "directory": directory, "users": [users] if isinstance(users, str) else users,
            "permissions": permissions})

    def revokeShare(self, users: str | list[str], fileUri: str | None = None,  # noqa: N802,N803
                    directory: str | None = None) -> JSONRecords:
        """Take back a share of a file or a directory; one DlsResponse per user."""
        params = _drop_none({"file-uri": fileUri, "directory": directory,
                             "user": [users] if isinstance(users, str) else users})
        return self._records("DELETE", "/share", params=params)

    @overload
    def getShares(self, responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getShares(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getShares(self, responseType: TextType) -> str: ...

    def getShares(self, responseType: ResponseType = "json"  # noqa: N802,N803
                  ) -> JSON | pd.DataFrame:
        """The shares you granted and those you received."""
        return self._render(self._call("GET", "/share"), responseType, times=TIMES)

    # -- relations -------------------------------------------------------------------------------
    def createRelation(self, sourceUri: str, targetUri: str,  # noqa: N802,N803
                       relation: str) -> JSONObject:
        """Link ``sourceUri`` to ``targetUri`` with a named relation (``"derivedFrom"``)."""
        return self._object("POST", "/relation", json={
            "source": sourceUri, "target": targetUri, "relation": relation})

    @overload
    def getRelation(self, fileUri: str | None = None, relation: str | None = None,
                    responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getRelation(self, fileUri: str | None = None, relation: str | None = None,
                    responseType: Literal["dataframe"] = ...) -> pd.DataFrame: ...
    @overload
    def getRelation(self, fileUri: str | None = None, relation: str | None = None,
                    responseType: TextType = ...) -> str: ...

    def getRelation(self, fileUri: str | None = None, relation: str | None = None,  # noqa: N802,N803
                    responseType: ResponseType = "json") -> JSON | pd.DataFrame:  # noqa: N803
        """Relations between files you can read: all, those of ``fileUri``, or of one name."""
        params = _drop_none({"file-uri": fileUri, "relation": relation})
        return self._render(self._call("GET", "/relation", params=params), responseType,
                            times=TIMES)

    def deleteRelation(self, sourceUri: str, targetUri: str,  # noqa: N802,N803
                       relation: str | None = None) -> JSONObject:
        """Remove the relations from source to target (only ``relation``, if given)."""
        return self._object("DELETE", "/relation", params=_drop_none({
            "source": sourceUri, "target": targetUri, "relation": relation}))

    # -- your own key --------------------------------------------------------------------------
    def newKey(self) -> JSONObject:  # noqa: N802
        """A new DLS key for yourself (the user whose key this connector sends); the old
        one stops working. This connector goes on with the new key; the answer holds it
        (``dlsKey``), shown once: keep it (e.g. in your config's ``dls_key``)."""
        answer = self._object("POST", "/user/key")
        self.dls_key = answer["dlsKey"]
        return answer

    # -- the tenant administrator's (an API key with role admin; no DLS key) -------------------
    def createUser(self, user: str) -> JSONObject:  # noqa: N802
        """Register a DLS user of your tenant; the answer holds its key (``dlsKey``).
        Needs the tenant administrator's API key, like every call below."""
        return self._admin("POST", "/admin/users", json={"user": user})

    @overload
    def getUsers(self, responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getUsers(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getUsers(self, responseType: TextType) -> str: ...

    def getUsers(self, responseType: ResponseType = "json"  # noqa: N802,N803
                 ) -> JSON | pd.DataFrame:
        """The tenant's DLS users with their file counts and bytes."""
        return self._render(self.http.request("GET", f"{BASE}/admin/users"), responseType,
                            times=TIMES)

    def newUserKey(self, user: str) -> JSONObject:  # noqa: N802
        """A new key for ``user``; the old one stops working (for your own, :meth:`newKey`)."""
        return self._admin("POST", f"/admin/users/{user}/key")

    def deleteUser(self, user: str) -> JSONObject:  # noqa: N802
        """Remove a DLS user who owns no files."""
        return self._admin("DELETE", f"/admin/users/{user}")

    def getStorage(self) -> JSONObject:  # noqa: N802
        """The tenant's storage: type, bytes used, quota, file count."""
        return self._admin("GET", "/admin/storage")

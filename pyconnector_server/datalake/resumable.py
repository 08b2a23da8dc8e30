"""Resumable Data Lake uploads: TCUP's ``POST /file/resumable``, ``GET /file/status/…`` and
``PUT /file/status``, with the bytes carried over HTTP (TCUP's RFT carries them over
RSocket) by ``PUT /file/resumable`` in chunks at stated offsets.

A session is the caller's upload of one file of its own area
(``<tenant>/<user>/[<directory>/][<savepoint>/]<filename>``: its URI names it). It lives
in the server's data directory, ``<data dir>/resumable/t<tenant id>/u<user id>/``, as two
files named by a hash of the path (no name a user chooses reaches the file system): the
staged bytes (``<id>.part``) and what the session is (``<id>.json``, replaced atomically).
A chunk is appended to the staged file and fsync'd before it is acknowledged; a chunk cut
off mid-way keeps (and fsyncs) the bytes that arrived, so the client goes on from the
last byte stored. The staged size is the offset: there is no other record to drift from
it. Completion copies the staged bytes to a new blob and records it exactly as the plain
upload does (:meth:`~.store.DatalakeStore.plan_upload` and
:meth:`~.store.DatalakeStore.commit_upload`: modes, path checks, quota, one transaction).

Sessions are swept (:func:`sweep_sessions`, called by the platform's sweeper) once idle
for ``sweep_grace_seconds``. They live in one server's data directory: several servers
behind a load balancer need sticky sessions or a shared data directory for them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, PlainTextResponse

from ..bodies import documented
from ..deps import call
from ..errors import APIError, bad_request
from ..openapi import answers
from . import answers as a
from . import form as fb
from . import validate as v
from .routes import PREFIX, WRITE_BLOCK, Caller, Store
from .store import DatalakeStore, DlsUser, dls_error

router = APIRouter(prefix=PREFIX, tags=["Data Lake Service"])

ROOT = "resumable"  # under the data directory
MAX_OPEN = 64  # open sessions per user
RESUME_SUFFIX = "..resume"  # TCUP's RFT client asks the status of "<filename>..resume"
STATUSES = ("UPLOADED", "PAUSED", "RESUMED")
_RANGE = re.compile(r"^bytes (\d{1,19})-(\d{1,19})/(\d{1,19})$")


class ResumableStatus(BaseModel):
    """Where a resumable upload stands."""

    model_config = ConfigDict(populate_by_name=True)

    uri: str = Field(description="The file URI the upload will have")
    offset: int = Field(description="Bytes stored so far: the next chunk starts here")
    size_bytes: int = Field(alias="size-bytes", description="The upload's declared size")
    status: str = Field(description="RESUMED (receiving), PAUSED or UPLOADED (done)")


_TEXT_URI = {"text/plain": {"schema": {"type": "string", "description": "the file URI"}}}


# -- sessions on disk ---------------------------------------------------------------------------
@dataclass
class Session:
    """One upload's two files: ``part`` (the staged bytes) and ``info`` (what it is)."""

    folder: Path
    id: str

    @property
    def part(self) -> Path:
        return self.folder / f"{self.id}.part"

    @property
    def info(self) -> Path:
        return self.folder / f"{self.id}.json"

    def read(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.info.read_text()))
        except FileNotFoundError:
            return None

    def write(self, info: dict[str, Any]) -> None:
        """Replace the session's record atomically and durably."""
        tmp = self.folder / f"{self.id}.json.tmp"
        with open(tmp, "w") as fh:
            json.dump(info, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.info)
        _fsync_dir(self.folder)

    def stored(self) -> int:
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _folder(request: Request, u: DlsUser) -> Path:
    data: Path = request.app.state.settings.data_path
    return data / ROOT / f"t{u.tenant.id}" / f"u{u.id}"


def _binary(path: Path, mode: str) -> IO[bytes]:
    return open(path, mode)  # noqa: SIM115 - closed by the caller


def _session(request: Request, u: DlsUser, path: str) -> Session:
    return Session(_folder(request, u), hashlib.sha256(path.encode()).hexdigest()[:32])


def _uri(u: DlsUser, path: str) -> str:
    return f"{u.tenant.name}/{u.name}/{path}"


def _lock(fh: IO[bytes], uri: str) -> None:
    """Hold the staged file for one writer (a chunk, a completion, a restart); another
    at the same time gets 409 (a chunk whose connection broke may still be finishing)."""
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise dls_error(409, "upload.busy", f"a chunk of {uri!r} is being stored right now; "
                        "ask GET /file/status for the offset and try again",
                        "file-uri") from None


def _status(uri: str, info: dict[str, Any], offset: int) -> dict[str, Any]:
    return {"uri": uri, "offset": offset, "size-bytes": info["size"], "status": info["status"]}


def _answer(request: Request, body: dict[str, Any], code: int = 200) -> Any:
    """TCUP's answer (the URI as text) when the client asks for text/plain, else JSON."""
    accept = request.headers.get("accept", "")
    if "text/plain" in accept and "json" not in accept:
        return PlainTextResponse(body["uri"], status_code=code)
    return JSONResponse(body, status_code=code)


def _own(request: Request, u: DlsUser, raw: str) -> tuple[Session, dict[str, Any], str]:
    """The caller's session of ``file-uri`` ``raw``: 404 when there is none, or the URI
    is another user's or tenant's (their sessions are invisible)."""
    uri = v.uri(raw)
    info = None
    if uri.tenant == u.tenant.name and uri.user == u.name:
        s = _session(request, u, uri.path)
        info = s.read()
    if info is None:
        raise dls_error(404, "not.found", f"no resumable upload of {raw!r} is open for you "
                        "(POST /file/resumable opens one)", "file-uri")
    return s, info, str(uri)


def _size(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 19:
        raise bad_request(f"sizeInBytes: expected a number of bytes, got {raw[:40]!r}",
                          "sizeInBytes")
    return int(raw)


def _reserved(root: Path, skip: Path) -> int:
    """Bytes the tenant's other open sessions declared (they will need quota too)."""
    total = 0
    for info in root.glob("u*/*.json"):
        if info == skip:
            continue
        with contextlib.suppress(OSError, ValueError, KeyError):
            d = json.loads(info.read_text())
            if d["status"] != "UPLOADED":
                total += int(d["size"])
    return total


# -- routes ---------------------------------------------------------------------------------------
@router.post("/file/resumable", status_code=201,
             summary="Open (or resume) a resumable upload of a file of yours",
             description="TCUP's query: filename, directory, savepoint, sizeInBytes "
             "(required), plus mode (as POST /file); comment and metadata (k1=v1,k2=v2) in "
             "the query or as multipart/form-data fields. Answers the file URI and the offset "
             "to send from (0 for a new upload; the bytes stored when an open upload of "
             "the same file and size is resumed, keeping its comment and metadata unless new ones "
             "are given; another size, or restart=true, starts over). Accept: "
             "text/plain answers the URI alone, as TCUP does. The bytes follow with PUT "
             "/file/resumable.",
             dependencies=[documented({"type": "object", "properties": {
                 "comment": {"type": "string"}, "metadata": {"type": "string"}}},
                 "multipart/form-data")],
             responses={**answers(ResumableStatus, 201, "Opened (200: an open upload resumed)",
                                  400, 404, 409, media=_TEXT_URI),
                        200: {"model": ResumableStatus, "description": "Resumed",
                              "content": _TEXT_URI}})
async def open_upload(request: Request, filename: str, directory: str | None = None,
                      savepoint: str | None = None, mode: str | None = None,
                      comment: str | None = None, metadata: list[str] = Query(default=[]),
                      sizeInBytes: str = Query(..., description="the file's size"),  # noqa: N803
                      restart: bool = Query(False, description="start over even if an "
                                            "upload of the same file and size is open"),
                      u: DlsUser = Caller, s: DatalakeStore = Store) -> Any:
    m = v.mode(mode)
    d, sp, name = v.directory(directory), v.savepoint(savepoint), v.filename(filename)
    size = _size(sizeInBytes)
    limit = request.app.state.settings.max_upload_bytes
    if size > limit:
        raise dls_error(400, "upload.filesize.exceeds", f"{size} bytes is over the "
                        f"platform's largest upload ({limit} bytes)", "sizeInBytes")
    notes, raw_meta = [comment] if comment is not None else [], list(metadata)
    form = fb.boundary(request.headers.get("content-type", ""))
    if form is not None:
        reader = fb.FormReader(request.stream(), form)
        while (p := await reader.next_part()) is not None:
            if p.name not in ("comment", "metadata"):
                raise bad_request(f"{p.name[:64]}: not a field of a resumable upload "
                                  "(comment, metadata; the bytes go with PUT "
                                  "/file/resumable)", "body")
            text = await reader.text(p.name)
            (notes if p.name == "comment" else raw_meta).append(text)
    if len(notes) > 1:
        raise bad_request("comment: give one comment, in the form or the query", "comment")
    note = v.comment(notes[0]) if notes else None
    v.metadata(raw_meta)
    target, room = await call(s.plan_upload, u, m, directory=d, savepoint=sp, filename=name,
                              declared_size=size)
    sess = _session(request, u, target.path)
    uri = _uri(u, target.path)
    if room is not None and size > room - await call(_reserved, sess.folder.parent, sess.info):
        raise dls_error(409, "insufficient.storage", f"{size} bytes do not fit: the quota "
                        "left, less what your tenant's open resumable uploads declared, is "
                        "smaller", "sizeInBytes")
    info = {"directory": d, "savepoint": sp, "filename": name, "mode": m, "size": size,
            "comment": note, "metadata": raw_meta, "status": "RESUMED", "created": time.time()}
    code, offset = await call(_open, sess, info, uri, restart)
    return _answer(request, _status(uri, info, offset), code)


def _open(sess: Session, info: dict[str, Any], uri: str, restart: bool) -> tuple[int, int]:
    """Make or resume the session; (201 or 200, the offset)."""
    sess.folder.mkdir(parents=True, exist_ok=True)
    old = sess.read()
    if old is None and len(list(sess.folder.glob("*.json"))) >= MAX_OPEN:
        raise dls_error(409, "too.many.uploads", f"you have {MAX_OPEN} resumable uploads "
                        "open; complete some first (idle ones go after sweep_grace_seconds)")
    with open(sess.part, "ab") as fh:
        _lock(fh, uri)
        resume = (not restart and old is not None and old["status"] != "UPLOADED"
                  and old["size"] == info["size"])
        if resume:
            assert old is not None
            info["created"] = old["created"]
            # A resume that names no comment or metadata keeps those it was opened with.
            info["comment"] = info["comment"] if info["comment"] is not None else old["comment"]
            info["metadata"] = info["metadata"] or old["metadata"]
        else:
            fh.truncate(0)
            os.fsync(fh.fileno())
        sess.write(info)
        return (200 if resume else 201), os.fstat(fh.fileno()).st_size


def _content_range(header: str | None, offset: str | None,
                   size: int) -> tuple[int, int]:
    """``(start, end)``, end exclusive, of a chunk: ``Content-Range: bytes a-b/size`` or
    ``offset`` (the chunk then runs to the end of the body)."""
    if header is not None:
        m = _RANGE.match(header.strip())
        if not m:
            raise bad_request("content-range: expected 'bytes <first>-<last>/<size>'",
                              "content-range")
        first, last, total = int(m[1]), int(m[2]), int(m[3])
        if total != size:
            raise bad_request(f"content-range: the total must be the upload's size, {size}",
                              "content-range")
        if first > last or last >= size:
            raise bad_request(f"content-range: bytes {first}-{last} are not within the "
                              f"upload's {size} bytes", "content-range")
        if offset is not None and offset != m[1]:
            raise bad_request("offset: differs from content-range", "offset")
        return first, last + 1
    if offset is None:
        raise bad_request("content-range: required (or offset)", "content-range")
    if not offset.isdigit() or len(offset) > 19:
        raise bad_request(f"offset: expected a number of bytes, got {offset[:40]!r}", "offset")
    return int(offset), size


@router.put("/file/resumable", summary="Send a chunk of a resumable upload",
            description="The body is the chunk; Content-Range: bytes <first>-<last>/<size> "
            "(or offset=<first>: to the body's end) says where it goes, and it must start at "
            "the offset stored (else 409 naming it, header upload-offset). Answered once the "
            "chunk is on disk (fsync'd); a chunk cut off keeps the bytes that arrived. The "
            "chunk that reaches the size completes the upload and answers as POST /file.",
            dependencies=[documented({"type": "string", "format": "binary"},
                                     "application/octet-stream")],
            responses={**answers(ResumableStatus, 200, "Stored; the new offset", 400, 404,
                                 409),
                       201: {"model": a.Uploaded, "description": "The last chunk: the file "
                             "is stored (200 when it overwrote or appended)"}})
async def put_chunk(request: Request, file_uri: str = Query(..., alias="file-uri"),
                    offset: str | None = None, u: DlsUser = Caller,
                    s: DatalakeStore = Store) -> Any:
    sess, info, uri = _own(request, u, file_uri)
    if info["status"] == "UPLOADED":
        raise dls_error(409, "upload.completed", f"{uri!r} is already uploaded", "file-uri")
    start, end = _content_range(request.headers.get("content-range"), offset, info["size"])
    fh = await call(_binary, sess.part, "r+b")
    try:
        _lock(fh, uri)
        stored = os.fstat(fh.fileno()).st_size
        if start != stored:
            raise APIError(409, f"offset.mismatch: the upload has {stored} bytes stored; "
                           f"send from offset {stored}", field="content-range",
                           headers={"upload-offset": str(stored)})
        await _receive(request, fh, start, end)
    finally:
        await call(fh.close)
    offset_now = sess.stored()
    if offset_now == info["size"]:
        return await _complete(request, u, s, sess, uri)
    return JSONResponse(_status(uri, info, offset_now))


async def _receive(request: Request, fh: IO[bytes], start: int, end: int) -> None:
    """Append the body (``end - start`` bytes at most) at ``start``, in blocks of about
    :data:`~.routes.WRITE_BLOCK`; fsync what came, all of it even when the body is cut."""
    fh.seek(start)
    got = 0
    parts: list[bytes] = []
    held = 0
    try:
        async for chunk in request.stream():
            got += len(chunk)
            if got > end - start:
                parts = []
                await call(fh.truncate, start)
                raise bad_request(f"body: longer than the {end - start} bytes the range "
                                  "leaves for it", "content-range")
            parts.append(chunk)
            held += len(chunk)
            if held >= WRITE_BLOCK:
                await call(fh.write, b"".join(parts))
                parts, held = [], 0
    finally:
        # Cut off or not, what arrived is kept and made durable: the client resumes there.
        with anyio.CancelScope(shield=True):
            await call(_flush, fh, b"".join(parts))


def _flush(fh: IO[bytes], rest: bytes) -> None:
    fh.write(rest)
    fh.flush()
    os.fsync(fh.fileno())


@router.get("/file/status/{filename}", summary="Where a resumable upload of yours stands",
            description="The file's savepoint and directory in the query; a filename "
            "ending in '..resume' (TCUP's RFT client) is the same file. Accept: text/plain "
            "answers the file URI alone (TCUP answers a path there).",
            responses=answers(ResumableStatus, 200, "The bytes stored so far", 400, 404,
                              media=_TEXT_URI))
async def get_status(request: Request, filename: str, savepoint: str | None = None,
                     directory: str | None = None, u: DlsUser = Caller) -> Any:
    if filename.endswith(RESUME_SUFFIX) and len(filename) > len(RESUME_SUFFIX):
        filename = filename[:-len(RESUME_SUFFIX)]
    path = v.join_path(v.directory(directory), v.savepoint(savepoint), v.filename(filename))
    sess, info, uri = _own(request, u, _uri(u, path))
    offset = info["size"] if info["status"] == "UPLOADED" else await call(sess.stored)
    return _answer(request, _status(uri, info, offset))


@router.put("/file/status", summary="Complete (UPLOADED), pause or resume a resumable upload",
            description="status UPLOADED stores the file (as the last chunk does; again "
            "after it is done it answers the same); PAUSED and RESUMED are recorded. No body.",
            responses={**answers(ResumableStatus, 200, "PAUSED or RESUMED recorded (or the "
                                 "upload's answer, for UPLOADED)", 400, 404, 409),
                       201: {"model": a.Uploaded, "description": "UPLOADED: the file is "
                             "stored (200 when it overwrote or appended)"}})
async def put_status(request: Request, file_uri: str = Query(..., alias="file-uri"),
                     status: str = Query(..., description="UPLOADED, PAUSED or RESUMED"),
                     u: DlsUser = Caller, s: DatalakeStore = Store) -> Any:
    if status not in STATUSES:
        raise bad_request(f"status: one of {', '.join(STATUSES)}", "status")
    sess, info, uri = _own(request, u, file_uri)
    if status == "UPLOADED":
        return await _complete(request, u, s, sess, uri)
    if info["status"] == "UPLOADED":
        raise dls_error(409, "upload.completed", f"{uri!r} is already uploaded", "file-uri")
    info["status"] = status
    await call(sess.write, info)
    return JSONResponse(_status(uri, info, await call(sess.stored)))


async def _complete(request: Request, u: DlsUser, s: DatalakeStore, sess: Session,
                    uri: str) -> Any:
    """Store the staged bytes as the file, as the plain upload would; once done, the
    session answers the same again (a client whose answer was lost may ask twice)."""
    try:
        fh = await call(_binary, sess.part, "rb")
    except FileNotFoundError:
        fh = None
    try:
        if fh is not None:
            _lock(fh, uri)
        info = await call(sess.read)
        if info is None:
            raise dls_error(404, "not.found", f"no resumable upload of {uri!r} is open for "
                            "you", "file-uri")
        if info["status"] == "UPLOADED" or fh is None:
            done: dict[str, Any] | None = info.get("answer")
            if done is None:
                raise dls_error(404, "not.found", f"the staged bytes of {uri!r} are gone",
                                "file-uri")
            return JSONResponse(done, status_code=done["code"])
        stored = os.fstat(fh.fileno()).st_size
        if stored != info["size"]:
            raise dls_error(409, "upload.incomplete", f"{stored} of {info['size']} bytes are "
                            f"stored; send from offset {stored}", "file-uri")
        items = v.metadata(info["metadata"])
        target, _ = await call(s.plan_upload, u, info["mode"], directory=info["directory"],
                               savepoint=info["savepoint"], filename=info["filename"],
                               declared_size=stored)
        key, sha256 = await call(_copy_to_blob, s, u, fh)
        # Recorded, then marked done, with no cancellation in between: a request cancelled
        # after the commit must neither delete the blob the catalog now points at nor
        # leave the upload to be committed a second time.
        with anyio.CancelScope(shield=True):
            try:
                answer, garbage = await call(s.commit_upload, u, target, key, stored, items,
                                              info["comment"], None, sha256)
            except BaseException:
                await call(s.blobs.delete, key)
                raise
            info.update(status="UPLOADED", answer=answer)
            await call(sess.write, info)
            await call(sess.part.unlink)
            for old in garbage:
                await call(s.blobs.delete, old)
        return JSONResponse(answer, status_code=answer["code"])
    finally:
        if fh is not None:
            await call(fh.close)


def _copy_to_blob(s: DatalakeStore, u: DlsUser, fh: IO[bytes]) -> tuple[str, str]:
    """A new blob of the staged bytes; its key and SHA-256."""
    key = s.new_blob_key(u.tenant)
    digest = hashlib.sha256()
    fh.seek(0)
    with s.blobs.writer(key) as w:
        while block := fh.read(1 << 20):
            digest.update(block)
            w.write(block)
    return key, digest.hexdigest()


# -- the sweeper's part -----------------------------------------------------------------------------
def sweep_sessions(data_path: Path, before: float) -> int:
    """Remove sessions (open or done) untouched since ``before`` (epoch seconds); a
    session whose chunk is being received is left alone. Returns how many went."""
    n = 0
    root = data_path / ROOT
    for info in root.glob("t*/u*/*.json"):
        part = info.with_suffix(".part")
        with contextlib.suppress(OSError):
            ages = [info.stat().st_mtime]
            with contextlib.suppress(FileNotFoundError):
                ages.append(part.stat().st_mtime)
            if max(ages) >= before:
                continue
            with open(part, "ab") as fh:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                info.unlink()
                part.unlink()
            n += 1
    for tmp in root.glob("t*/u*/*.tmp"):  # a record being replaced when the server died
        with contextlib.suppress(OSError):
            if tmp.stat().st_mtime < before:
                tmp.unlink()
    return n

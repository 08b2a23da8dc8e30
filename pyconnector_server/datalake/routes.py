"""DLS HTTP routes under ``/api/dls`` (TCUP's DLS base path is not public; ours is this).

Every call carries ``x-api-key`` (the tenant) and ``x-dls-key`` (the user), as TCUP's DLS
wants: a missing or unknown API key is 401, a missing DLS key 403, an unknown one 401.
One exception, so that the guide's connection line (an API key and nothing else) reaches
the Data Lake: the tenant administrator's API key (role ``admin``) without a DLS key acts
as the tenant's administrator user ``dlsadmin`` (:data:`~.store.ADMIN_USER`, made on its
first call). An ``app`` key gains nothing: without a DLS key it is still 403.
The ``/admin`` routes are the tenant administrator's: an API key with role ``admin``
(any other key gets 403); a user changes its own key with ``POST /user/key``. Answers
use real HTTP codes (no "200 with the code in the body" as SOS does); bulk calls answer
207 with TCUP's ``DlsResponse`` list (``key``, ``value``, ``code``, ``messages``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse, StreamingResponse

from ..apidocs import add_api_docs
from ..auth import ApiKey, Tenant
from ..backends.blobs import BlobWriter
from ..bodies import batch_body, documented, json_body
from ..checks import int_param
from ..deps import Auth, AuthKey, call, state
from ..errors import APIError, bad_request, register_dialect
from ..openapi import answers, errors, secured
from . import answers as a
from . import form as fb
from . import validate as v
from .bodies import MetadataUpdate, RelationIn, ShareIn, UserIn
from .namematch import NamePattern
from .query import CatalogQuery
from .store import ADMIN_USER, DatalakeStore, DlsUser, dls_error
from .tcup_errors import dialect

PREFIX = "/api/dls"
DLS_KEY_HEADER = "x-dls-key"
WRITE_BLOCK = 1 << 20  # bytes handed to the blob store per write
FETCH = ("directoryFirst", "fileFirst", "directoryOnly", "fileOnly")  # explore's records

router = APIRouter(prefix=PREFIX, tags=["Data Lake Service"])
register_dialect(PREFIX, dialect(PREFIX))  # every DLS error carries TCUP's message key
add_api_docs(router)  # GET /api/dls/v2/api-docs, where TCUP serves a service's document


store = state("dls", DatalakeStore)


def _keyed_user(request: Request, t: Tenant, key: str) -> DlsUser:
    u = request.app.state.dls.user_for_key(t, key)
    if u is None:
        raise dls_error(401, "not.authenticated", "unknown DLS key")
    return u


@secured("ApiKey", "DlsKey", forbids=True)
def caller(request: Request, k: ApiKey = AuthKey) -> DlsUser:
    """FastAPI dependency: the DLS user the request authenticates as: the owner of its
    ``x-dls-key``, or, with the tenant administrator's API key and no DLS key, the
    tenant's administrator user ``dlsadmin``."""
    key = request.headers.get(DLS_KEY_HEADER)
    if key:
        return _keyed_user(request, k.tenant, key)
    if k.is_admin:
        return request.app.state.dls.admin_user(k.tenant)
    raise dls_error(403, "not.authorized",
                    f"send your DLS user key in the '{DLS_KEY_HEADER}' header (only the "
                    f"tenant administrator's API key goes without one, as user '{ADMIN_USER}')")


@secured("ApiKey", "DlsKey", forbids=True)
def keyed_caller(request: Request, t: Tenant = Auth) -> DlsUser:
    """FastAPI dependency: the DLS user whose own ``x-dls-key`` the request sends (no
    stand-in for the administrator: a key is changed only by one who holds it)."""
    key = request.headers.get(DLS_KEY_HEADER)
    if not key:
        raise dls_error(403, "not.authorized",
                        f"send your DLS user key in the '{DLS_KEY_HEADER}' header (the "
                        f"tenant administrator gives '{ADMIN_USER}' a key with POST "
                        f"{PREFIX}/admin/users/{ADMIN_USER}/key)")
    return _keyed_user(request, t, key)


@secured("ApiKey", forbids=True)
def admin(k: ApiKey = AuthKey) -> Tenant:
    """FastAPI dependency: the tenant whose administrator calls (an ``admin`` API key);
    403 for any other key, whatever DLS key comes with it."""
    if not k.is_admin:
        raise dls_error(403, "not.authorized",
                        f"{PREFIX}/admin/… needs the tenant administrator's API key (role "
                        f"'admin'); this API key has role {k.role!r}. A DLS user changes "
                        f"its own key with POST {PREFIX}/user/key")
    return k.tenant


Caller = Depends(caller)
KeyedCaller = Depends(keyed_caller)
Admin = Depends(admin)
Store = Depends(store)
FileUri = Query(..., alias="file-uri", description="<tenant>/<user>/[<directory>/]"
                "[<savepoint>/]<filename>")


def _multi(items: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(items, status_code=207)


# -- files ---------------------------------------------------------------------------------
async def _blocks(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` (a request body, a form part) in blocks of about :data:`WRITE_BLOCK`."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= WRITE_BLOCK:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


async def _stream_to(writer: BlobWriter, chunks: AsyncIterator[bytes],
                     room: int | None) -> tuple[int, str]:
    """Write ``chunks`` to ``writer``, ``room`` bytes at most; return the size and the
    SHA-256 (hex). The next block is received while the last one is hashed and written
    (a thread does both, the event loop reads)."""
    digest = hashlib.sha256()

    def put(block: bytes) -> None:
        digest.update(block)
        writer.write(block)

    pending: asyncio.Future[None] | None = None
    seen = 0
    try:
        async for block in _blocks(chunks):
            seen += len(block)
            if room is not None and seen > room:
                raise dls_error(409, "insufficient.storage",
                                f"the upload is bigger than the {room} bytes of quota left")
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(call(put, block))
        if pending is not None:
            await pending
    except BaseException:
        if pending is not None and not pending.done():
            with anyio.CancelScope(shield=True):
                await asyncio.wait([pending])
        raise
    return seen, digest.hexdigest()


async def _store_blob(s: DatalakeStore, u: DlsUser, chunks: AsyncIterator[bytes],
                      room: int | None) -> tuple[str, int, str]:
    """Stream ``chunks`` to a new blob; its key, size and SHA-256. Nothing stays if the
    stream fails."""
    key = s.new_blob_key(u.tenant)
    writer = await call(s.blobs.writer, key)
    try:
        size, sha256 = await _stream_to(writer, chunks, room)
        await call(writer.commit)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await call(writer.abort)
        raise
    return key, size, sha256


def _content_type(raw: str, field: str) -> str:
    """The file's media type from a Content-Type header; "" to guess it from the name."""
    essence = raw.split(";")[0].strip()
    if essence.lower() in ("", "application/octet-stream",
                           "application/x-www-form-urlencoded"):
        return ""
    return v.content_type(essence, field)


@router.post("/file", status_code=201, summary="Upload a file (the request body, streamed)",
             responses={**answers(a.Uploaded, 201, "Stored (200 when overwritten or "
                                  "appended)", 404, 409), 200: {"model": a.Uploaded}},
             dependencies=[documented({"type": "string", "format": "binary"},
                                      "application/octet-stream")],
             description="The body is the file; or TCUP's multipart/form-data form with "
             "parts file (its filename is the default filename), comment and metadata "
             "(repeatable). Name it with filename, directory and savepoint (your area), or "
             "file-uri (an existing file you may write). mode: RESTRICT (default: refuse if "
             "it exists), OVERWRITE, APPEND or ARCHIVE (keep the old one under a time-stamped "
             "name). metadata: key=value (repeatable or comma-separated; private@key is "
             "yours alone). sizeInBytes (or Content-Length) lets a quota refusal come "
             "before the bytes. The answer carries the file's SHA-256.")
async def upload(request: Request, filename: str | None = None, directory: str | None = None,
                 savepoint: str | None = None, mode: str | None = None,
                 comment: str | None = None, metadata: list[str] = Query(default=[]),
                 sizeInBytes: int | None = Query(None, ge=0),  # noqa: N803 - TCUP name
                 file_uri: str | None = Query(None, alias="file-uri"),
                 u: DlsUser = Caller, s: DatalakeStore = Store) -> Any:
    m = v.mode(mode)
    items = v.metadata(metadata)
    note = v.comment(comment) if comment is not None else None
    if file_uri is not None:
        v.uri(file_uri)
    else:
        directory, savepoint = v.directory(directory), v.savepoint(savepoint)
        filename = None if filename is None else v.filename(filename)
    header = request.headers.get("content-type", "")
    form = fb.boundary(header)
    declared = sizeInBytes
    length = request.headers.get("content-length")
    if declared is None and form is None and length and length.isdigit():
        declared = int(length)  # a form's length is more than its file's

    async def plan(name: str | None) -> Any:
        if file_uri is not None:
            return await call(s.plan_upload, u, m, uri=file_uri, declared_size=declared)
        return await call(s.plan_upload, u, m, directory=directory, savepoint=savepoint,
                           filename=name, declared_size=declared)

    if form is None:
        ctype = _content_type(header, "content-type")
        target, room = await plan(filename)
        key, size, sha256 = await _store_blob(s, u, request.stream(), room)
    else:
        target, key, size, sha256, ctype, fields = await _read_form(
            fb.FormReader(request.stream(), form), s, u, filename, plan)
        try:
            items = v.metadata(metadata + fields["metadata"])  # the query's, then the form's
            if fields["comment"]:
                if note is not None or len(fields["comment"]) > 1:
                    raise bad_request("comment: give one comment, in the form or the query",
                                      "comment")
                note = v.comment(fields["comment"][0])
        except BaseException:
            with anyio.CancelScope(shield=True):
                await call(s.blobs.delete, key)
            raise
    # Shielded: a request cancelled once the commit is done must not delete the blob the
    # catalog now points at (only a commit that failed or was rolled back drops it).
    with anyio.CancelScope(shield=True):
        try:
            answer, garbage = await call(s.commit_upload, u, target, key, size, items, note,
                                          ctype or None, sha256)
        except BaseException:
            await call(s.blobs.delete, key)
            raise
        for old in garbage:
            await call(s.blobs.delete, old)
    return JSONResponse(answer, status_code=answer["code"])


async def _read_form(form: fb.FormReader, s: DatalakeStore, u: DlsUser,
                     filename: str | None, plan: Callable[[str | None], Any],
                     ) -> tuple[Any, str, int, str, str, dict[str, list[str]]]:
    """Read TCUP's upload form: the file part to a new blob (planned when its headers
    arrive: its filename is the default name), the text parts into ``fields``. Returns the
    target, the blob's key, size and SHA-256, the file's media type and the text fields."""
    fields: dict[str, list[str]] = {"comment": [], "metadata": []}
    stored: tuple[Any, str, int, str, str] | None = None
    try:
        while (part := await form.next_part()) is not None:
            if part.name == "file":
                if stored is not None:
                    raise bad_request("file: one file per upload", "file")
                name = filename
                if name is None and part.filename:
                    name = v.filename(part.filename, "file")
                ctype = _content_type(part.content_type, "file")
                target, room = await plan(name)
                key, size, sha256 = await _store_blob(s, u, form.data(), room)
                stored = (target, key, size, sha256, ctype)
            elif part.name in fields:
                fields[part.name].append(await form.text(part.name))
            else:
                raise bad_request(f"{part.name[:64]}: not a part of the upload form (file, "
                                  "comment, metadata)", "body")
        if stored is None:
            raise bad_request("file: the form has no part named 'file'", "file")
    except BaseException:
        if stored is not None:
            with anyio.CancelScope(shield=True):
                await call(s.blobs.delete, stored[1])
        raise
    return (*stored, fields)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _position(digits: str) -> int:
    """A byte position of a Range header. Past 2**63 every position is beyond any file, so
    it stays that big: RFC 9110 clips an end past the file, and a start past it is 416
    (``int()`` of thousands of digits is refused by Python itself)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 19 else 2**63


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single ``Range: bytes=…`` header; None for the whole file."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m[1] and not m[2]):
        return None  # several ranges or another unit: send the whole file (RFC 9110)
    if not m[1]:
        n = _position(m[2])
        if n == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size
    start = _position(m[1])
    end = min(size, _position(m[2]) + 1) if m[2] else size
    if start >= size or end <= start:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> APIError:
    return APIError(416, f"range not satisfiable: the file has {size} bytes",
                    headers={"content-range": f"bytes */{size}"})


async def _read_ahead(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` (a blob being read), each read in a thread while the one before it is
    being sent: the disk (or the object store) and the socket work at the same time, and
    at most two chunks of a download are in memory."""
    def step() -> bytes | None:
        return next(chunks, None)

    ahead: asyncio.Future[bytes | None] = asyncio.ensure_future(call(step))
    try:
        while (chunk := await ahead) is not None:
            ahead = asyncio.ensure_future(call(step))
            yield chunk
    finally:
        # The client left (or the read failed): let the read in flight end, then close
        # the blob (its file, its connection) in a thread.
        if not ahead.done():
            with anyio.CancelScope(shield=True):
                await asyncio.wait([ahead])
        elif not ahead.cancelled():
            ahead.exception()  # seen: a failure after the client left matters to nobody
        close = getattr(chunks, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await call(close)


@router.get("/file", summary="Download a file (Range: bytes=… for a part)",
            responses={200: {"description": "The file", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}},
                206: {"description": "The part of the file the Range asked for", "content": {
                    "application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}}},
                **errors(404, 416)})
async def download(request: Request, file_uri: str = FileUri, u: DlsUser = Caller,
                   s: DatalakeStore = Store) -> Any:
    row = await call(s.file_for_read, u, file_uri)
    span = _byte_range(request.headers.get("range"), row.size)
    start, end = span or (0, row.size)
    try:
        # The catalog's size bounds the read: bytes past it are not (yet) part of the file.
        chunks = await call(s.blobs.read, row.blob_key, start, end)
    except FileNotFoundError:
        raise dls_error(404, "not.found", f"{file_uri!r} changed while being read; "
                        "try again", "file-uri") from None
    headers = {"content-length": str(end - start), "accept-ranges": "bytes",
               "content-disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}",
               "last-modified-ms": str(row.updated_ms)}
    if span:
        headers["content-range"] = f"bytes {start}-{end - 1}/{row.size}"
    return StreamingResponse(_read_ahead(chunks), status_code=206 if span else 200,
                             media_type=row.content_type, headers=headers)


@router.delete("/file", status_code=207, summary="Delete files (207: one DlsResponse per file-uri)",
               responses=answers(list[a.DlsResponse], 207, "One DlsResponse per file-uri",
                                 404, 409))
async def delete(file_uri: list[str] = Query(..., alias="file-uri"), u: DlsUser = Caller,
                 s: DatalakeStore = Store) -> Any:
    out = []
    failed: APIError | None = None
    for uri in file_uri:
        try:
            item, key = await call(s.delete_file, u, uri)
        except APIError as exc:
            failed = exc
            out.append({"key": "file-uri", "value": uri, "code": exc.status,
                        "messages": [exc.message]})
            continue
        await call(s.blobs.delete, key)
        out.append(item)
    if len(out) == 1 and failed is not None:
        raise APIError(failed.status, failed.message, field="file-uri", key=failed.key)
    return _multi(out)


@router.put("/file/metadata", summary="Set or remove metadata of a file (and its comment)",
            description='Body: {"metadata": ["k=v", "private@k=v"], "remove": ["k"], '
            '"comment": "…"}', responses=answers(a.Updated, 200, "Updated", 404, 409))
async def put_metadata(
        file_uri: str = FileUri,
        u: DlsUser = Caller,
        body: MetadataUpdate = json_body(MetadataUpdate, ""),
        s: DatalakeStore = Store) -> Any:
    items = v.metadata(body.metadata)
    return await call(s.update_metadata, u, file_uri, items, body.remove, body.comment)


# -- catalog ---------------------------------------------------------------------------------
@router.get("/catalog", summary="Search the catalog",
            description="text, time (one or two: from, to), size (e.g. >10mb; repeatable), "
            "metadata (e.g. site='pune' & rate>=5; ',' is OR, '&' AND, brackets, * "
            "wildcard), uri, filename, directory, savepoint, user (owner), ownFile, sort "
            "(createdOn|fileName|size|updatedOn), order (asc|desc), pageNo, pageSize. "
            "Booleans (true|false): ownFile (yours, or shared with you); external, "
            "transferred, deleted, bundled, locked: no file here is in those states, so "
            "false matches every file and true none.",
            responses=answers(a.CatalogPage, 200, "A page of matching files", 400))
async def catalog(request: Request, u: DlsUser = Caller, s: DatalakeStore = Store) -> Any:
    q = CatalogQuery.from_params(request.query_params,
                                 request.app.state.settings.max_page_size)
    return await call(s.search, u, q)


@router.get("/catalog/explore", summary="List a directory: subdirectories and files",
            description="path (default your root; D1/D2 or /D1/D2), user (whose area: "
            "default yours), fetch (directoryFirst (default), fileFirst, directoryOnly, "
            "fileOnly: which records, in which order, paged as one list), nameRegex (keeps "
            "the records whose name it matches; a search, anchor with ^ $; no "
            "back-references or look-arounds), pageNo, pageSize.",
            responses=answers(a.Listing, 200, "The directory's page", 400, 404))
async def explore(request: Request, path: str | None = None, user: str | None = None,
                  pageNo: str | None = Query(None, description="from 1"),  # noqa: N803 - TCUP
                  pageSize: str | None = Query(None, description="default 100"),  # noqa: N803
                  fetch: str | None = Query(None, description="|".join(FETCH)),
                  nameRegex: str | None = Query(None, description="a regular "  # noqa: N803
                                                "expression the names match"),
                  u: DlsUser = Caller, s: DatalakeStore = Store) -> Any:
    # Checked by int_param, as the catalog's: a number past 32 bits is a 400, not an
    # OFFSET the database refuses.
    page_no = int_param(pageNo, "pageNo", 1, 1)
    page_size = int_param(pageSize, "pageSize", 100, 1, request.app.state.settings.max_page_size)
    owner = v.user_name(user) if user is not None else None
    if fetch in (None, ""):
        fetch = FETCH[0]
    if fetch not in FETCH:
        raise bad_request(f"fetch: must be one of {', '.join(FETCH)}", "fetch")
    pattern = NamePattern(nameRegex) if nameRegex else None
    return await call(s.explore, u, owner, v.directory(path, "path"), page_no, page_size,
                      fetch, pattern)


# -- sharing ---------------------------------------------------------------------------------
@router.put("/share", status_code=207, summary="Share a file or directory of yours with users (207)",
            description='Body: {"file-uri": "…"} or {"directory": "…"} ("" is all your '
            'files), "users": ["…"], "permissions": "R" | "RW" | "RWD" (default R)',
            responses=answers(list[a.DlsResponse], 207, "One DlsResponse per user", 404))
async def put_share(
        u: DlsUser = Caller,
        body: ShareIn = json_body(ShareIn, ""),
        s: DatalakeStore = Store) -> Any:
    return _multi(await call(s.share, u, body.users, body.permissions, uri=body.file_uri,
                             directory=body.directory))


@router.delete("/share", status_code=207, summary="Revoke shares (207)",
               responses=answers(list[a.DlsResponse], 207, "One DlsResponse per user", 404))
async def delete_share(file_uri: str | None = Query(None, alias="file-uri"),
                       directory: str | None = None, user: list[str] = Query(...),
                       u: DlsUser = Caller, s: DatalakeStore = Store) -> Any:
    users = [v.user_name(n) for n in user]
    if file_uri is not None:
        v.uri(file_uri)
    d = v.directory(directory) if directory is not None else None
    return _multi(await call(s.revoke, u, users, uri=file_uri, directory=d))


@router.get("/share", summary="Shares you granted and received",
            responses=answers(list[a.Share], 200, "The shares"))
async def get_shares(u: DlsUser = Caller, s: DatalakeStore = Store) -> Any:
    return await call(s.list_shares, u)


# -- relations -------------------------------------------------------------------------------
@router.post("/relation", status_code=201, summary="Link files with named relations",
             description='Body: {"source": uri, "target": uri, "relation": "derivedFrom"} '
             "(201) or a list of them (207).",
             responses={**answers(a.DlsResponse, 201, "Linked (one relation)", 404, 409),
                        207: {"model": list[a.DlsResponse],
                              "description": "One DlsResponse per relation (a list)"}})
async def post_relation(
        u: DlsUser = Caller,
        body: Any = batch_body(RelationIn, "", "", max_items=v.MAX_RELATIONS),
        s: DatalakeStore = Store) -> Any:
    many = isinstance(body, list)
    out = []
    for item in body if many else [body]:
        try:
            if isinstance(item, APIError):  # refused by its checks
                raise item
            out.append(await call(s.link, u, item.source, item.target, item.relation))
        except APIError as exc:
            if not many:
                raise
            value = exc.field or "" if isinstance(item, APIError) else (
                f"{item.source} -[{item.relation}]-> {item.target}")
            out.append({"key": "relation", "value": value, "code": exc.status,
                        "messages": [exc.message]})
    if not many:
        item = out[0]
        if item["code"] >= 400:
            raise dls_error(item["code"], "already.exists", item["value"], "relation")
        return JSONResponse(item, status_code=201)
    return _multi(out)


@router.get("/relation", summary="Relations between files you can read",
            description="file-uri: only those of this file (as source or target); "
            "relation: only this name.",
            responses=answers(list[a.Relation], 200, "The relations", 404))
async def get_relation(file_uri: str | None = Query(None, alias="file-uri"),
                       relation: str | None = None, u: DlsUser = Caller,
                       s: DatalakeStore = Store) -> Any:
    name = v.relation_name(relation) if relation is not None else None
    return await call(s.relations, u, file_uri, name)


@router.delete("/relation", summary="Remove relations from source to target",
               responses=answers(a.Updated, 200, "Removed (count says how many)", 404,
                                 409))
async def delete_relation(source: str, target: str, relation: str | None = None,
                          u: DlsUser = Caller, s: DatalakeStore = Store) -> Any:
    name = v.relation_name(relation) if relation is not None else None
    return await call(s.unlink, u, source, target, name)


# -- a user's own key ---------------------------------------------------------------------------
@router.post("/user/key", summary="A new key for the calling DLS user, the old one stops",
             description="x-api-key and your own x-dls-key; answers your new key, shown once.",
             responses=answers(a.UserKey, 200, "The new key"))
async def new_own_key(u: DlsUser = KeyedCaller, s: DatalakeStore = Store) -> Any:
    return await call(s.new_own_key, u)


# -- the tenant admin's: an API key with role admin ---------------------------------------------
@router.post("/admin/users", status_code=201,
             summary="Register a DLS user; answers its key (admin key)",
             description='Body: {"user": "name"}. The key is shown once; 409 if the user '
             "exists (POST /admin/users/{user}/key gives a new key).",
             responses=answers(a.UserKey, 201, "The user and its key", 409))
async def create_user(
        t: Tenant = Admin,
        body: UserIn = json_body(UserIn, ""),
        s: DatalakeStore = Store) -> Any:
    return await call(s.create_user, t, body.user)


@router.get("/admin/users", summary="DLS users of the tenant (admin key)",
            responses=answers(list[a.UserDetails], 200, "The users"))
async def list_users(t: Tenant = Admin, s: DatalakeStore = Store) -> Any:
    return await call(s.list_users, t)


@router.post("/admin/users/{name}/key",
             summary="A new key for a user, the old one stops (admin key)",
             responses=answers(a.UserKey, 200, "The new key", 404))
async def new_key(name: str, t: Tenant = Admin, s: DatalakeStore = Store) -> Any:
    return await call(s.new_key, t, v.user_name(name))


@router.delete("/admin/users/{name}",
               summary="Remove a DLS user who owns no files (admin key)",
               responses=answers(a.Updated, 200, "Removed", 404, 409))
async def delete_user(name: str, t: Tenant = Admin, s: DatalakeStore = Store) -> Any:
    return await call(s.delete_user, t, v.user_name(name))


@router.get("/admin/storage",
            summary="The tenant's storage: type, bytes used, quota (admin key)",
            responses=answers(a.Storage, 200, "The tenant's storage"))
async def storage(t: Tenant = Admin, s: DatalakeStore = Store) -> Any:
    return await call(s.storage, t)


@router.get("/admin/storage/type",
            summary="Where the files are kept: type and path or bucket (admin key)",
            description="TCUP's storage type answer, {\"type\": …, \"value\": …}: LOCAL "
            "and the directory (TCUP says NFS and its mount path), S3 and s3://bucket/prefix, "
            "or MEMORY.",
            responses=answers(a.StorageType, 200, "The storage type"))
async def storage_type(_t: Tenant = Admin, s: DatalakeStore = Store) -> Any:
    return s.storage_type()

"""DLS service logic: users, the catalog, uploads, shares and relations.

Blobs are stored under opaque keys (``t<tenant id>/<random hex>``), never under names
users choose: a rename or an archive is a catalog change, and no name can reach the
blob store's namespace. A file's bytes are written to a fresh key first; one database
transaction then checks the quota and the upload mode and points the catalog at the
key. Until that commit readers see the old file; if it fails the new blob is deleted.
"""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa

from ..auth import Tenant, hash_key
from ..backends.blobs import BlobStore
from ..db import Database
from ..deps import now_ms
from ..errors import APIError
from . import validate as v
from .dates import dls_time
from .namematch import NamePattern
from .query import CatalogQuery, text_condition
from .tables import file, meta, relation, share, tenant_storage, user


def dls_error(status: int, key: str, detail: str, field: str | None = None) -> APIError:
    """An error with TCUP's message ``key``, which its message starts with too
    (``not.found: …``)."""
    return APIError(status, f"{key}: {detail}", field=field, key=key)


def not_found(uri: str) -> APIError:
    return dls_error(404, "not.found", f"no file {uri!r} is visible to you", "file-uri")


@dataclass(frozen=True)
class DlsUser:
    """The caller of a DLS request: a user of a tenant."""

    id: int
    name: str
    tenant: Tenant


@dataclass
class Target:
    """Where an upload goes; ``existing`` is the catalog row already there, if any."""

    owner_id: int
    owner: str
    directory: str
    savepoint: str
    filename: str
    mode: str
    existing: Any = None

    @property
    def path(self) -> str:
        return v.join_path(self.directory, self.savepoint, self.filename)


# The tenant's administrator user: its admin API key acts as this user when it sends no
# DLS key (the guide's URIs name it: user1/dlsadmin/…).
ADMIN_USER = "dlsadmin"

# An APPEND that finds the file changed when it commits starts again this many times.
APPEND_TRIES = 3


class _Changed(Exception):
    """The file an APPEND was combined with changed before the catalog was updated."""


@dataclass
class _Blob:
    """A blob written for an upload: key, size, SHA-256; ``used`` once the catalog (or
    the garbage list) owns it."""

    key: str
    size: int
    sha256: str
    used: bool = False


def _insert_ignore(conn: sa.Connection, table: sa.Table, **values: Any) -> None:
    """INSERT … ON CONFLICT DO NOTHING (both dialects have it, each in its own module)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(table).values(**values).on_conflict_do_nothing())


class DatalakeStore:
    """Tenant- and user-scoped reads and writes of the DLS tables and blobs."""

    def __init__(self, db: Database, blobs: BlobStore | None, default_quota: int = 0) -> None:
        self.db = db
        self.blobs: BlobStore = blobs  # type: ignore[assignment]  # None: admin use only
        self.default_quota = default_quota

    # -- users (the tenant admin's; new_own_key is the user's own) ---------------------------
    def create_user(self, t: Tenant, name: str, replace_key: bool = False) -> dict[str, Any]:
        """Register DLS user ``name`` and return its new key. An existing user is a 409,
        unless ``replace_key``: then it gets a new key and the old one stops working."""
        name = v.user_name(name)
        key = secrets.token_hex(32)
        with self.db.write() as conn:
            _insert_ignore(conn, tenant_storage, tenant_id=t.id)
            uid = self._user_id(conn, t, name)
            if uid is not None and not replace_key:
                raise dls_error(409, "already.exists", f"DLS user {name!r}", "user")
            if uid is None:
                conn.execute(sa.insert(user).values(tenant_id=t.id, name=name,
                                                    key_hash=hash_key(key), created_ms=now_ms()))
            else:
                conn.execute(sa.update(user).where(user.c.id == uid)
                             .values(key_hash=hash_key(key)))
        return {"code": 201 if uid is None else 200, "user": name, "dlsKey": key,
                "message": "created" if uid is None else "updated"}

    def new_key(self, t: Tenant, name: str) -> dict[str, Any]:
        with self.db.read() as conn:
            if self._user_id(conn, t, name) is None:
                raise dls_error(404, "not.found", f"DLS user {name!r}", "user")
        return self.create_user(t, name, replace_key=True)

    def new_own_key(self, u: DlsUser) -> dict[str, Any]:
        """A new key for the calling user itself (the old one stops working)."""
        key = secrets.token_hex(32)
        with self.db.write() as conn:
            # By id, not name: a user deleted and made again meanwhile is someone else.
            n = conn.execute(sa.update(user)
                             .where(user.c.id == u.id, user.c.tenant_id == u.tenant.id)
                             .values(key_hash=hash_key(key))).rowcount
        if not n:
            raise dls_error(401, "not.authenticated", "unknown DLS key")
        return {"code": 200, "user": u.name, "dlsKey": key, "message": "updated"}

    def list_users(self, t: Tenant) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(user.c.name, user.c.created_ms,
                          sa.func.count(file.c.id).label("files"),
                          sa.func.coalesce(sa.func.sum(file.c.size), 0).label("bytes"))
                .outerjoin(file, file.c.owner_id == user.c.id)
                .where(user.c.tenant_id == t.id).group_by(user.c.id, user.c.name,
                                                          user.c.created_ms)
                .order_by(user.c.name)).all()
        return [{"user": r.name, "created-on": dls_time(r.created_ms), "file-count": r.files,
                 "size-bytes": int(r.bytes)} for r in rows]

    def delete_user(self, t: Tenant, name: str) -> dict[str, Any]:
        with self.db.write() as conn:
            uid = self._user_id(conn, t, name)
            if uid is None:
                raise dls_error(404, "not.found", f"DLS user {name!r}", "user")
            if conn.execute(sa.select(file.c.id).where(file.c.owner_id == uid).limit(1)).first():
                raise dls_error(409, "user.has.files", f"DLS user {name!r} still owns files; "
                                "delete them first", "user")
            conn.execute(sa.delete(user).where(user.c.id == uid))
        return {"code": 200, "message": "deleted", "user": name}

    def admin_user(self, t: Tenant) -> DlsUser:
        """The tenant's administrator user :data:`ADMIN_USER`, as whom its admin API key
        acts without a DLS key; made on first use, with a key nobody holds (``POST
        /admin/users/dlsadmin/key`` gives one). A user of that name made before is it."""
        with self.db.read() as conn:
            uid = self._user_id(conn, t, ADMIN_USER)
        if uid is None:
            with self.db.write() as conn:  # two first calls at once: one row (the unique name)
                _insert_ignore(conn, tenant_storage, tenant_id=t.id)
                _insert_ignore(conn, user, tenant_id=t.id, name=ADMIN_USER,
                               key_hash=hash_key(secrets.token_hex(32)), created_ms=now_ms())
                uid = self._user_id(conn, t, ADMIN_USER)
        assert uid is not None
        return DlsUser(uid, ADMIN_USER, t)

    def user_for_key(self, t: Tenant, key: str) -> DlsUser | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(user.c.id, user.c.name).where(
                user.c.tenant_id == t.id, user.c.key_hash == hash_key(key))).first()
        return DlsUser(row.id, row.name, t) if row else None

    @staticmethod
    def _user_id(conn: sa.Connection, t: Tenant, name: str) -> int | None:
        return conn.execute(sa.select(user.c.id).where(
            user.c.tenant_id == t.id, user.c.name == name)).scalar()

    # -- quota -----------------------------------------------------------------------------------
    def set_quota(self, t: Tenant, quota_bytes: int | None) -> None:
        """The tenant's quota in bytes (``None``: the server default; 0: unlimited)."""
        with self.db.write() as conn:
            _insert_ignore(conn, tenant_storage, tenant_id=t.id)
            conn.execute(sa.update(tenant_storage).where(tenant_storage.c.tenant_id == t.id)
                         .values(quota_bytes=quota_bytes))

    def _quota(self, conn: sa.Connection, t: Tenant, lock: bool = False) -> tuple[int, int]:
        """``(used, quota)`` in bytes; quota 0 is unlimited. ``lock`` serialises uploads."""
        q = sa.select(tenant_storage.c.quota_bytes).where(tenant_storage.c.tenant_id == t.id)
        row = conn.execute(q.with_for_update() if lock else q).first()
        quota = self.default_quota if row is None or row.quota_bytes is None else row.quota_bytes
        used = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(file.c.size), 0))
                            .where(file.c.tenant_id == t.id)).scalar_one()
        return int(used), int(quota)

    def storage(self, t: Tenant) -> dict[str, Any]:
        with self.db.read() as conn:
            used, quota = self._quota(conn, t)
            count = conn.execute(sa.select(sa.func.count()).select_from(file)
                                 .where(file.c.tenant_id == t.id)).scalar_one()
        return {"type": self.blobs.kind.upper(), "used-bytes": used,
                "quota-bytes": quota or None, "file-count": count}

    def storage_type(self) -> dict[str, str]:
        """TCUP's storage type answer: the blob store's kind and where it keeps blobs
        (a path or a bucket URL: never an endpoint or credentials)."""
        kind = self.blobs.kind
        if kind == "s3":
            # The bucket and prefix alone: no endpoint, no userinfo (a key is no one's business).
            value = "s3://" + str(getattr(self.blobs, "base", "")).rsplit("@", 1)[-1]
        elif kind == "local":
            value = str(getattr(self.blobs, "root", ""))
        else:
            value = f"{kind}://"
        return {"type": kind.upper(), "value": value}

    @staticmethod
    def _over_quota(used: int, quota: int, extra: int) -> APIError | None:
        if quota and used + extra > quota:
            return dls_error(409, "insufficient.storage",
                             f"this needs {extra} more bytes but only {max(0, quota - used)} "
                             f"of the tenant's {quota} are free")
        return None

    # -- visibility and permissions ------------------------------------------------------------
    def _shares_to(self, conn: sa.Connection, u: DlsUser) -> list[Any]:
        return conn.execute(sa.select(share).where(share.c.grantee_id == u.id)).all()

    @staticmethod
    def _covers(s: Any, owner_id: int, file_id: int, directory: str) -> bool:
        if s.file_id is not None:
            return s.file_id == file_id
        return s.owner_id == owner_id and (
            s.directory == "" or directory == s.directory
            or directory.startswith(s.directory + "/"))

    def _perms(self, u: DlsUser, row: Any, shares: list[Any]) -> str:
        if row.owner_id == u.id:
            return "RWD"
        letters = {p for s in shares if self._covers(s, row.owner_id, row.id, row.directory)
                   for p in s.permissions}
        return "".join(p for p in v.PERMISSIONS if p in letters)

    @staticmethod
    def _visible(u: DlsUser, shares: list[Any], f: Any = file) -> Any:
        """A condition on :data:`file` (or its alias ``f``): the rows ``u`` may read."""
        conds = [f.c.owner_id == u.id]
        ids = [s.file_id for s in shares if s.file_id is not None]
        if ids:
            conds.append(f.c.id.in_(ids))
        for s in shares:
            if s.file_id is None:
                d = s.directory
                conds.append(sa.and_(f.c.owner_id == s.owner_id, sa.true() if d == "" else
                                     sa.or_(f.c.directory == d,
                                            f.c.directory.startswith(d + "/",
                                                                     autoescape=True))))
        return sa.and_(f.c.tenant_id == u.tenant.id, sa.or_(*conds))

    def _resolve(self, conn: sa.Connection, u: DlsUser, raw: str, need: str = "R",
                 field: str = "file-uri", lock: bool = False) -> Any:
        """The catalog row of URI ``raw`` if ``u`` may ``need`` it: 404 if ``u`` cannot
        see it (or it is another tenant's), 409 ``no.write.privilege`` (or
        ``no.delete.privilege``) if ``u`` sees it without ``need``: TCUP's status for it."""
        uri = v.uri(raw, field)
        if uri.tenant != u.tenant.name:
            raise not_found(raw)
        q = (sa.select(file).join(user, user.c.id == file.c.owner_id)
             .where(file.c.tenant_id == u.tenant.id, user.c.name == uri.user,
                    file.c.path == uri.path))
        row = conn.execute(q.with_for_update(of=file) if lock else q).first()
        if row is None:
            raise not_found(raw)
        perms = self._perms(u, row, self._shares_to(conn, u) if row.owner_id != u.id else [])
        if "R" not in perms:
            raise not_found(raw)
        if need not in perms:
            word = {"W": "write", "D": "delete"}[need]
            raise dls_error(409, f"no.{word}.privilege",
                            f"you may not {word} {raw!r}", field)
        return row

    # -- uploads ---------------------------------------------------------------------------------
    def plan_upload(self, u: DlsUser, mode: str, *, uri: str | None = None,
                    directory: str = "", savepoint: str = "", filename: str | None = None,
                    declared_size: int | None = None) -> tuple[Target, int | None]:
        """Check an upload before its bytes arrive: the target, the mode, the split of its
        URI, and the quota if the size is declared. Returns the target and the number of
        bytes the upload may bring (``None``: no limit)."""
        with self.db.read() as conn:
            if uri is not None:
                row = self._resolve(conn, u, uri, "W")
                owner = uri.split("/")[1]
                target = Target(row.owner_id, owner, row.directory, row.savepoint,
                                row.filename, mode, row)
            else:
                if filename is None:
                    raise APIError(400, "filename: required (or file-uri of a file to change)",
                                   field="filename")
                target = Target(u.id, u.name, directory, savepoint, filename, mode)
                target.existing = conn.execute(sa.select(file).where(
                    file.c.owner_id == u.id, file.c.path == target.path)).first()
            self._check_target(conn, target)
            used, quota = self._quota(conn, u.tenant)
        freed = target.existing.size if target.existing is not None and mode == "OVERWRITE" else 0
        if declared_size is not None and (err := self._over_quota(used - freed, quota,
                                                                   declared_size)):
            raise err
        return target, (max(0, quota - used + freed) if quota else None)

    def _check_target(self, conn: sa.Connection, target: Target) -> None:
        if target.existing is not None:
            if target.mode == "RESTRICT":
                raise dls_error(409, "already.exists",
                                f"{target.owner}/{target.path} exists; upload with mode "
                                "OVERWRITE, APPEND or ARCHIVE to change it", "filename")
            return
        # A URI segment is a directory or a savepoint of its parent, never both, so every
        # URI splits one way only into directory/savepoint/filename.
        # A savepoint of several segments (`run/v1`) holds its first one (`run`).
        segs = target.directory.split("/") if target.directory else []
        clashes = []
        for j, seg in enumerate(segs):
            clashes.append(sa.and_(file.c.directory == "/".join(segs[:j]), sa.or_(
                file.c.savepoint == seg,
                file.c.savepoint.startswith(seg + "/", autoescape=True))))
        if target.savepoint:
            as_dir = v.join_path(target.directory, target.savepoint.split("/")[0], "")
            clashes += [file.c.directory == as_dir,
                        file.c.directory.startswith(as_dir + "/", autoescape=True)]
        if clashes:
            clash = conn.execute(sa.select(file.c.directory, file.c.savepoint).where(
                file.c.owner_id == target.owner_id, sa.or_(*clashes)).limit(1)).first()
            if clash is not None:
                held = v.join_path(clash.directory, clash.savepoint, "")
                raise dls_error(409, "path.conflict", (
                    f"'{target.owner}/{target.path}' would read two ways: files already use "
                    f"directory {clash.directory or '/'!r}"
                    + (f" with savepoint {clash.savepoint!r}" if clash.savepoint else "")
                    + f" ({held!r}); a name is a directory or a savepoint of its parent, "
                    "not both"), "savepoint" if target.savepoint else "directory")

    def new_blob_key(self, t: Tenant) -> str:
        return f"t{t.id}/{uuid.uuid4().hex}"

    def commit_upload(self, u: DlsUser, target: Target, blob_key: str, size: int,
                      items: list[v.MetaItem], comment: str | None,
                      content_type: str | None, sha256: str | None = None,
                      ) -> tuple[dict[str, Any], list[str]]:
        """Record an upload whose bytes (``sha256`` their hash) are in ``blob_key``; return
        the answer and the blob keys to delete now that the catalog no longer points at them.

        Blob I/O never happens inside a transaction (it would make every writer of every
        service wait): an APPEND first writes the old content and the upload to a new blob,
        then one short transaction swaps it in if the file did not change meanwhile; if it
        did, the append starts again from the new content (:data:`APPEND_TRIES` times).
        """
        for _ in range(APPEND_TRIES):
            base = combined = None
            if target.mode == "APPEND":
                with self.db.read() as conn:
                    base = conn.execute(sa.select(file).where(
                        file.c.owner_id == target.owner_id, file.c.path == target.path)).first()
                if base is not None:
                    combined = self._combine(u.tenant, base, blob_key)
            try:
                return self._record(u, target, blob_key, size, items, comment, content_type,
                                    sha256, base, combined)
            except _Changed:
                continue
            finally:
                if combined is not None and not combined.used:
                    self.blobs.delete(combined.key)
        raise dls_error(409, "file.changed", f"{target.owner}/{target.path} kept changing "
                        f"while this append was written ({APPEND_TRIES} tries); try again",
                        "filename")

    def _combine(self, t: Tenant, base: Any, upload_key: str) -> _Blob:
        """A new blob of ``base``'s content followed by the upload's, and its SHA-256."""
        key = self.new_blob_key(t)
        digest = hashlib.sha256()
        try:
            with self.blobs.writer(key) as w:
                for src, end in ((base.blob_key, base.size), (upload_key, None)):
                    for chunk in self.blobs.read(src, 0, end):
                        digest.update(chunk)
                        w.write(chunk)
        except FileNotFoundError:
            raise _Changed from None  # base's blob was replaced (and deleted) meanwhile
        return _Blob(key, w.size, digest.hexdigest())

    def _record(self, u: DlsUser, target: Target, blob_key: str, size: int,
                items: list[v.MetaItem], comment: str | None, content_type: str | None,
                sha256: str | None, base: Any, combined: _Blob | None,
                ) -> tuple[dict[str, Any], list[str]]:
        """The upload's one write transaction: catalog only, no blob I/O."""
        ts = now_ms()
        garbage: list[str] = []
        with self.db.write() as conn:
            used, quota = self._quota(conn, u.tenant, lock=True)
            existing = conn.execute(sa.select(file).where(
                file.c.owner_id == target.owner_id, file.c.path == target.path)
                .with_for_update()).first()
            if target.mode == "APPEND" and (
                    (existing is None) != (base is None) or existing is not None and (
                        existing.blob_key, existing.size) != (base.blob_key, base.size)):
                raise _Changed
            target.existing = existing
            self._check_target(conn, target)
            mode = target.mode if existing is not None else "CREATED"
            freed = existing.size if mode == "OVERWRITE" else 0
            if err := self._over_quota(used - freed, quota, size):
                raise err
            ctype = content_type or mimetypes.guess_type(target.filename)[0] \
                or "application/octet-stream"
            extra: dict[str, str] = {}
            if mode == "APPEND":
                assert combined is not None
                garbage += [blob_key, existing.blob_key]
                conn.execute(sa.update(file).where(file.c.id == existing.id).values(
                    size=combined.size, blob_key=combined.key, sha256=combined.sha256,
                    updated_ms=ts, updated_by=u.id, **({"comment": comment} if comment else {})))
                combined.used = True
                fid, size, sha256 = existing.id, combined.size, combined.sha256
            elif mode == "OVERWRITE":
                garbage.append(existing.blob_key)
                conn.execute(sa.update(file).where(file.c.id == existing.id).values(
                    size=size, blob_key=blob_key, sha256=sha256, content_type=ctype,
                    updated_ms=ts, updated_by=u.id, **({"comment": comment} if comment else {})))
                fid = existing.id
            else:
                if mode == "ARCHIVE":
                    archived = self._archive(conn, target, existing, ts)
                    extra["dls:archivedTo"] = f"{u.tenant.name}/{target.owner}/{archived}"
                fid = conn.execute(sa.insert(file).values(
                    tenant_id=u.tenant.id, owner_id=target.owner_id, path=target.path,
                    directory=target.directory, savepoint=target.savepoint,
                    filename=target.filename, size=size, content_type=ctype,
                    comment=comment or "", blob_key=blob_key, sha256=sha256, created_ms=ts,
                    updated_ms=ts, updated_by=u.id)).inserted_primary_key[0]
            extra["dls:lineage"] = mode
            self._set_meta(conn, u, fid, items, extra)
        uri = f"{u.tenant.name}/{target.owner}/{target.path}"
        message = {"CREATED": "created", "OVERWRITE": "overwritten", "APPEND": "appended",
                   "ARCHIVE": "archived"}[mode]
        answer = {"code": 201 if mode in ("CREATED", "ARCHIVE") else 200, "message": message,
                  "uri": uri, "size-bytes": size, "sha256": sha256}
        if "dls:archivedTo" in extra:
            answer["archived-to"] = extra["dls:archivedTo"]
        return answer, garbage

    def _archive(self, conn: sa.Connection, target: Target, row: Any, ts: int) -> str:
        """Rename ``row`` to ``<stem>.<UTC time><suffix>`` beside it; return its new path."""
        p = PurePosixPath(row.filename)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ts / 1000)) + f"{ts % 1000:03d}Z"
        suffix = p.suffix if len(p.suffix) <= 16 else ""
        stem = row.filename[: len(row.filename) - len(suffix)]
        for n in range(100):
            tail = f".{stamp}{'' if n == 0 else f'-{n}'}{suffix}"
            name = stem[: 255 - len(tail)] + tail
            path = v.join_path(row.directory, row.savepoint, name)
            if conn.execute(sa.select(file.c.id).where(
                    file.c.owner_id == row.owner_id, file.c.path == path)).first() is None:
                break
        conn.execute(sa.update(file).where(file.c.id == row.id).values(filename=name, path=path))
        return path

    def _set_meta(self, conn: sa.Connection, u: DlsUser, fid: int, items: Iterable[v.MetaItem],
                  system: dict[str, str] | None = None, remove: Iterable[str] = ()) -> None:
        rows = {self._stored_key(u, it.key): it.value for it in items}
        rows.update(system or {})
        doomed = set(rows) | {self._stored_key(u, k) for k in remove}
        if doomed:
            conn.execute(sa.delete(meta).where(meta.c.file_id == fid, meta.c.key.in_(doomed)))
        if rows:
            conn.execute(sa.insert(meta), [
                {"file_id": fid, "key": k, "value": val, "num": v.number(val),
                 "updated_by": u.id} for k, val in rows.items()])

    @staticmethod
    def _stored_key(u: DlsUser, key: str) -> str:
        return f"{u.id}@{key[len(v.PRIVATE_PREFIX):]}" if key.startswith(v.PRIVATE_PREFIX) \
            else key

    # -- reading, deleting, metadata ---------------------------------------------------------
    def file_for_read(self, u: DlsUser, uri: str) -> Any:
        with self.db.read() as conn:
            return self._resolve(conn, u, uri, "R")

    def delete_file(self, u: DlsUser, uri: str) -> tuple[dict[str, Any], str]:
        with self.db.write() as conn:
            row = self._resolve(conn, u, uri, "D", lock=True)
            conn.execute(sa.delete(file).where(file.c.id == row.id))
        return {"key": "file-uri", "value": uri, "code": 200, "messages": ["deleted"]}, \
            row.blob_key

    def update_metadata(self, u: DlsUser, uri: str, items: list[v.MetaItem],
                        remove: list[str], comment: str | None) -> dict[str, Any]:
        for i, key in enumerate(remove):
            v.meta_key(key, f"remove[{i}]")
        with self.db.write() as conn:
            row = self._resolve(conn, u, uri, "W", lock=True)
            self._set_meta(conn, u, row.id, items, remove=remove)
            values: dict[str, Any] = {"updated_ms": now_ms(), "updated_by": u.id}
            if comment is not None:
                values["comment"] = comment
            conn.execute(sa.update(file).where(file.c.id == row.id).values(**values))
        return {"code": 200, "message": "updated", "uri": uri}

    # -- catalog -----------------------------------------------------------------------------------
    def _details(self, conn: sa.Connection, u: DlsUser, rows: list[Any],
                 shares: list[Any]) -> list[dict[str, Any]]:
        """TCUP-style file records (kebab-case keys) of catalog rows."""
        if not rows:
            return []
        ids = [r.id for r in rows]
        names = dict(conn.execute(sa.select(user.c.id, user.c.name)
                                  .where(user.c.tenant_id == u.tenant.id)).all())
        metas: dict[int, list[dict[str, str]]] = {i: [] for i in ids}
        mine = f"{u.id}@"
        for m in conn.execute(sa.select(meta.c.file_id, meta.c.key, meta.c.value)
                              .where(meta.c.file_id.in_(ids)).order_by(meta.c.key)):
            if "@" in m.key:
                if not m.key.startswith(mine):
                    continue
                metas[m.file_id].append({"name": v.PRIVATE_PREFIX + m.key[len(mine):],
                                         "value": m.value, "privacy": "private"})
            else:
                metas[m.file_id].append({"name": m.key, "value": m.value,
                                         "privacy": "system" if m.key.startswith(
                                             v.SYSTEM_PREFIX) else "public"})
        return [{
            "uri": f"{u.tenant.name}/{names.get(r.owner_id)}/{r.path}",
            "filename": r.filename, "directory": r.directory, "savepoint": r.savepoint,
            "size-bytes": r.size, "content-type": r.content_type, "sha256": r.sha256,
            "comment": r.comment,
            "created-on": dls_time(r.created_ms), "created-by": names.get(r.owner_id),
            "updated-on": dls_time(r.updated_ms), "updated-by": names.get(r.updated_by),
            "permitted-action": self._perms(u, r, shares), "metadata": metas[r.id],
        } for r in rows]

    def search(self, u: DlsUser, q: CatalogQuery) -> dict[str, Any]:
        with self.db.read() as conn:
            shares = self._shares_to(conn, u)
            conds = [self._visible(u, shares), *q.conditions]
            if q.metadata is not None:
                # The aggregate over metadata reads only the rows of files u may see.
                scope = file.alias("scope")
                conds.append(q.metadata.condition(u.id, scope,
                                                  self._visible(u, shares, scope)))
            if q.text:
                conds.append(text_condition(q.text))
            if q.own_file is not None:
                conds.append(file.c.owner_id == u.id if q.own_file else file.c.owner_id != u.id)
            if q.user is not None:
                owner = self._user_id(conn, u.tenant, v.user_name(q.user))
                conds.append(file.c.owner_id == (owner or -1))
            if q.uri is not None:
                parsed = v.uri(q.uri, "uri")
                owner = self._user_id(conn, u.tenant, parsed.user)
                conds.append(sa.and_(file.c.owner_id == (owner or -1),
                                     file.c.path == parsed.path,
                                     sa.true() if parsed.tenant == u.tenant.name else
                                     sa.false()))
            where = sa.and_(*conds)
            count = conn.execute(sa.select(sa.func.count()).select_from(file).where(where)
                                 ).scalar_one()
            order = [q.sort.desc() if q.descending else q.sort.asc(),
                     file.c.id.desc() if q.descending else file.c.id.asc()]
            rows = conn.execute(sa.select(file).where(where).order_by(*order)
                                .limit(q.page_size).offset((q.page_no - 1) * q.page_size)).all()
            result = self._details(conn, u, rows, shares)
        pages = max(1, -(-count // q.page_size))
        return {"page": q.page_no, "page-size": q.page_size, "total-page": pages,
                "count": count, "result": result}

    def explore(self, u: DlsUser, owner: str | None, path: str, page_no: int,
                page_size: int, fetch: str = "directoryFirst",
                name: NamePattern | None = None) -> dict[str, Any]:
        """A directory of ``owner`` (default: the caller) as ``u`` sees it: its
        subdirectories (with file counts and sizes of all below) and its files, the
        records of both kinds paged as one list in the order ``fetch`` says
        (``directoryFirst``, ``fileFirst``, ``directoryOnly``, ``fileOnly``); ``name``
        keeps the records whose name it matches."""
        with self.db.read() as conn:
            shares = self._shares_to(conn, u)
            owner_name = owner or u.name
            owner_id = self._user_id(conn, u.tenant, owner_name)
            in_area = sa.and_(self._visible(u, shares), file.c.owner_id == (owner_id or -1))
            below = in_area if not path else sa.and_(in_area, sa.or_(
                file.c.directory == path,
                file.c.directory.startswith(path + "/", autoescape=True)))
            groups = conn.execute(sa.select(
                file.c.directory, sa.func.count().label("n"),
                sa.func.sum(file.c.size).label("bytes"),
                sa.func.min(file.c.created_ms).label("first"))
                .where(below).group_by(file.c.directory)).all()
            if path and not groups:
                raise dls_error(404, "not.found", f"no directory {path!r} of {owner_name!r} is "
                                "visible to you", "path")
            subdirs: dict[str, dict[str, Any]] = {}
            depth = len(path.split("/")) if path else 0
            for g in groups:
                segs = g.directory.split("/") if g.directory else []
                if len(segs) <= depth:
                    continue
                dname = segs[depth]
                d = subdirs.setdefault(dname, {
                    "name": dname, "path": "/".join(segs[:depth + 1]), "parent": path,
                    "size-bytes": 0, "file-count": 0, "subdir-count": set(),
                    "created-on": g.first, "created-by": owner_name, "metadata": []})
                d["file-count"] += g.n
                d["size-bytes"] += int(g.bytes)
                d["created-on"] = min(d["created-on"], g.first)
                if len(segs) > depth + 1:
                    d["subdir-count"].add(segs[depth + 1])
            directories = [{**d, "subdir-count": len(d["subdir-count"]),
                            "created-on": dls_time(d["created-on"])}
                           for _, d in sorted(subdirs.items())
                           if name is None or name.search(d["name"])]
            if fetch == "fileOnly":
                directories = []
            here = sa.and_(in_area, file.c.directory == path)
            ids: list[int] | None = None
            if fetch == "directoryOnly":
                ids = []
            elif name is not None:
                # Matched here, not in SQL: the pattern runs without backtracking (namematch).
                ids = [r.id for r in conn.execute(sa.select(file.c.id, file.c.filename)
                                                  .where(here).order_by(file.c.path))
                       if name.search(r.filename)]
            count = len(ids) if ids is not None else conn.execute(
                sa.select(sa.func.count()).select_from(file).where(here)).scalar_one()
            # One list, directories then files (or files first), cut into pages.
            start = (page_no - 1) * page_size
            first, second = ((len(directories), count) if fetch != "fileFirst"
                             else (count, len(directories)))
            take_first = (max(0, min(first, start + page_size) - start)
                          if start < first else 0)
            skip_second = max(0, start - first)
            take_second = max(0, min(second - skip_second, page_size - take_first))
            if fetch != "fileFirst":
                dir_span, file_span = (start, take_first), (skip_second, take_second)
            else:
                file_span, dir_span = (start, take_first), (skip_second, take_second)
            directories = directories[dir_span[0]:dir_span[0] + dir_span[1]]
            rows: list[Any] = []
            offset, limit = file_span
            if limit and ids is None:
                rows = conn.execute(sa.select(file).where(here).order_by(file.c.path)
                                    .limit(limit).offset(offset)).all()
            elif limit and ids:
                rows = conn.execute(sa.select(file).where(file.c.id.in_(
                    ids[offset:offset + limit])).order_by(file.c.path)).all()
            files = [{"name": f["filename"], "path": v.join_path(f["directory"], f["savepoint"], f["filename"]), "parent": path,
                      "file-count": 0, "subdir-count": 0, **f}
                     for f in self._details(conn, u, rows, shares)]
        total = first + second
        return {"user": owner_name, "path": path, "current-page": page_no,
                "total-page": max(1, -(-total // page_size)), "record-count": total,
                "directories": directories, "files": files}

    # -- shares --------------------------------------------------------------------------------------
    def share(self, u: DlsUser, users: list[str], permissions: str, *,
              uri: str | None = None, directory: str | None = None) -> list[dict[str, Any]]:
        """Grant ``permissions`` on a file of ``u`` (``uri``) or a directory of ``u`` to
        each of ``users``; one DlsResponse per user."""
        out = []
        with self.db.write() as conn:
            file_id, where = self._share_target(conn, u, uri, directory)
            for name in users:
                item = {"key": "user", "value": name}
                gid = self._user_id(conn, u.tenant, name)
                if gid is None or gid == u.id:
                    out.append({**item, "code": 404 if gid is None else 400, "messages": [
                        "not.found" if gid is None else "cannot share with yourself"]})
                    continue
                existing = conn.execute(sa.select(share.c.id).where(
                    share.c.grantee_id == gid, *where)).scalar()
                if existing is None:
                    conn.execute(sa.insert(share).values(
                        owner_id=u.id, grantee_id=gid, file_id=file_id,
                        directory=None if file_id else directory, permissions=permissions,
                        created_ms=now_ms()))
                else:
                    conn.execute(sa.update(share).where(share.c.id == existing)
                                 .values(permissions=permissions))
                out.append({**item, "code": 200, "messages": ["shared", permissions]})
        return out

    def _share_target(self, conn: sa.Connection, u: DlsUser, uri: str | None,
                      directory: str | None) -> tuple[int | None, list[Any]]:
        if (uri is None) == (directory is None):
            raise APIError(400, "give either file-uri or directory", field="file-uri")
        if uri is not None:
            row = self._resolve(conn, u, uri, "R")
            if row.owner_id != u.id:
                raise dls_error(403, "not.owner", f"only the owner may share {uri!r}",
                                "file-uri")
            return row.id, [share.c.file_id == row.id]
        return None, [share.c.owner_id == u.id, share.c.file_id.is_(None),
                      share.c.directory == directory]

    def revoke(self, u: DlsUser, users: list[str], *, uri: str | None = None,
               directory: str | None = None) -> list[dict[str, Any]]:
        out = []
        with self.db.write() as conn:
            _, where = self._share_target(conn, u, uri, directory)
            for name in users:
                gid = self._user_id(conn, u.tenant, name)
                n = 0 if gid is None else conn.execute(sa.delete(share).where(
                    share.c.grantee_id == gid, *where)).rowcount
                out.append({"key": "user", "value": name, "code": 200 if n else 404,
                            "messages": ["unshared" if n else "not.found"]})
        return out

    def list_shares(self, u: DlsUser) -> list[dict[str, Any]]:
        """Shares ``u`` granted and received."""
        grantee = user.alias("grantee")
        owner = user.alias("owner")
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(share, owner.c.name.label("owner"), grantee.c.name.label("grantee"),
                          file.c.path)
                .join(owner, owner.c.id == share.c.owner_id)
                .join(grantee, grantee.c.id == share.c.grantee_id)
                .outerjoin(file, file.c.id == share.c.file_id)
                .where(sa.or_(share.c.owner_id == u.id, share.c.grantee_id == u.id))
                .order_by(share.c.id)).all()
        t = u.tenant.name
        return [{"owner": r.owner, "user": r.grantee,
                 "file-uri": f"{t}/{r.owner}/{r.path}" if r.file_id else None,
                 "directory": r.directory if r.file_id is None else None,
                 "permissions": r.permissions, "created-on": dls_time(r.created_ms)}
                for r in rows]

    # -- relations -------------------------------------------------------------------------------
    def link(self, u: DlsUser, source: str, target: str, name: str) -> dict[str, Any]:
        """Relate ``source`` to ``target`` as ``name``: W on the source, R on the target."""
        item = {"key": "relation", "value": f"{source} -[{name}]-> {target}"}
        with self.db.write() as conn:
            src = self._resolve(conn, u, source, "W", "source")
            dst = self._resolve(conn, u, target, "R", "target")
            if src.id == dst.id:
                raise APIError(400, "target: a file cannot be related to itself", field="target")
            if conn.execute(sa.select(relation.c.id).where(
                    relation.c.source_id == src.id, relation.c.target_id == dst.id,
                    relation.c.name == name)).first():
                return {**item, "code": 409, "messages": ["already exists"]}
            conn.execute(sa.insert(relation).values(
                tenant_id=u.tenant.id, source_id=src.id, target_id=dst.id, name=name,
                created_ms=now_ms(), created_by=u.id))
        return {**item, "code": 201, "messages": ["linked"]}

    def relations(self, u: DlsUser, uri: str | None = None,
                  name: str | None = None) -> list[dict[str, Any]]:
        """Relations between files ``u`` can read; optionally of one file, or one name."""
        src, dst, by = file.alias("src"), file.alias("dst"), user.alias("by")
        so, do = user.alias("so"), user.alias("do")
        with self.db.read() as conn:
            shares = self._shares_to(conn, u)
            visible = self._visible(u, shares)
            conds = [relation.c.tenant_id == u.tenant.id,
                     relation.c.source_id.in_(sa.select(file.c.id).where(visible)),
                     relation.c.target_id.in_(sa.select(file.c.id).where(visible))]
            if uri is not None:
                row = self._resolve(conn, u, uri, "R")
                conds.append(sa.or_(relation.c.source_id == row.id,
                                    relation.c.target_id == row.id))
            if name is not None:
                conds.append(relation.c.name == name)
            rows = conn.execute(
                sa.select(relation.c.name, relation.c.created_ms, src.c.path.label("sp"),
                          dst.c.path.label("dp"), so.c.name.label("so"),
                          do.c.name.label("do"), by.c.name.label("by"))
                .join(src, src.c.id == relation.c.source_id)
                .join(dst, dst.c.id == relation.c.target_id)
                .join(so, so.c.id == src.c.owner_id).join(do, do.c.id == dst.c.owner_id)
                .outerjoin(by, by.c.id == relation.c.created_by)
                .where(*conds).order_by(relation.c.id)).all()
        t = u.tenant.name
        return [{"source": f"{t}/{r.so}/{r.sp}", "relation": r.name,
                 "target": f"{t}/{r.do}/{r.dp}", "created-on": dls_time(r.created_ms),
                 "created-by": r.by} for r in rows]

    def unlink(self, u: DlsUser, source: str, target: str,
               name: str | None) -> dict[str, Any]:
        with self.db.write() as conn:
            src = self._resolve(conn, u, source, "W", "source")
            dst = self._resolve(conn, u, target, "R", "target")
            conds = [relation.c.source_id == src.id, relation.c.target_id == dst.id]
            if name is not None:
                conds.append(relation.c.name == name)
            n = conn.execute(sa.delete(relation).where(*conds)).rowcount
        if not n:
            raise dls_error(404, "not.found", "no such relation", "relation")
        return {"code": 200, "message": "deleted", "count": n}




def datalake_admin(db: Database, command: str, tenant_name: str, args: dict[str, Any]) -> str:
    """The CLI's ``dlsuser create`` (answers the key) and ``dlsquota set``."""
    from ..auth import ensure_tenant

    t = ensure_tenant(db, tenant_name)
    s = DatalakeStore(db, None)
    if command == "dlsuser":
        return str(s.create_user(t, args["user"], replace_key=True)["dlsKey"])
    if args["quota_bytes"] < 0:
        raise SystemExit("--bytes: must be 0 (unlimited) or more")
    s.set_quota(t, args["quota_bytes"])
    return f"tenant {tenant_name!r}: data lake quota {args['quota_bytes'] or 'unlimited'}"

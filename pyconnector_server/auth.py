"""Tenants, API keys (hashed at rest, each with a role) and JWT verification.

Every request names its tenant with ``x-api-key``. A tenant with a JWT key (JWT mode)
must also send ``Authorization: Bearer <HS256 token signed with that key>``.

A key's role says what it may do besides the tenant's ordinary work: ``admin`` (the
tenant's administrator: the key made with the tenant, or ``apikey create --role admin``)
may also manage the tenant's Data Lake users and storage; ``app`` (a key handed to an
application or a DLS user) may not. Keys are looked up on every request, so a revoked
key stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
import sqlalchemy as sa
from fastapi import Depends
from starlette.requests import HTTPConnection

from .clock import now_ms
from .db import Database, api_key, tenant
from .errors import APIError
from .openapi import secured

API_KEY_HEADER = "x-api-key"
ADMIN = "admin"
APP = "app"
ROLES = (ADMIN, APP)
PREFIX_CHARS = 8  # of a key, kept in clear so `apikey list` can name it (32 of 256 bits)
MIN_REF_CHARS = 4  # the shortest key prefix `apikey revoke` accepts


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    jwt_secret: str | None = None


@dataclass(frozen=True)
class ApiKey:
    """An API key as the server knows it (never the key itself): its row and tenant."""

    id: int
    tenant: Tenant
    role: str
    prefix: str
    created_ms: int

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


@dataclass(frozen=True)
class NewApiKey:
    """A key just made: the key (shown once) and what it is."""

    key: str
    role: str
    tenant: Tenant
    tenant_created: bool


class KeyAdminError(Exception):
    """A key-management command that cannot be done as asked (the CLI prints the reason)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _tenant_row(conn: sa.Connection, name: str, lock: bool = False) -> Any:
    q = sa.select(tenant).where(tenant.c.name == name)
    # FOR UPDATE (PostgreSQL; SQLite's write transactions are serial anyway): two key
    # commands on one tenant take turns, so "is this the last admin key?" stays true.
    return conn.execute(q.with_for_update() if lock else q).first()


def _ensure(conn: sa.Connection, name: str) -> tuple[Tenant, bool]:
    row = _tenant_row(conn, name, lock=True)
    if row is None:
        tid = conn.execute(
            sa.insert(tenant).values(name=name, created_ms=now_ms())
        ).inserted_primary_key[0]
        return Tenant(tid, name), True
    return Tenant(row.id, row.name, row.jwt_secret), False


def ensure_tenant(db: Database, name: str) -> Tenant:
    """Return tenant ``name``, creating it if needed."""
    with db.write() as conn:
        return _ensure(conn, name)[0]


def _admin_count(conn: sa.Connection, tenant_id: int) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(api_key).where(
        api_key.c.tenant_id == tenant_id, api_key.c.role == ADMIN)).scalar_one()


def issue_api_key(db: Database, tenant_name: str, role: str | None = None) -> NewApiKey:
    """Make a new API key for ``tenant_name`` (creating the tenant).

    ``role`` None: ``admin`` if the tenant has no admin key yet (a new tenant, or one
    whose admin keys were all revoked), else ``app`` - the first key of a tenant is its
    administrator's, and further keys are for applications unless asked for.
    """
    if role is not None and role not in ROLES:
        raise KeyAdminError(f"role: one of {', '.join(ROLES)}; got {role!r}")
    key = secrets.token_hex(32)
    with db.write() as conn:
        t, created = _ensure(conn, tenant_name)
        if role is None:
            role = ADMIN if _admin_count(conn, t.id) == 0 else APP
        conn.execute(sa.insert(api_key).values(
            tenant_id=t.id, key_hash=hash_key(key), role=role, prefix=key[:PREFIX_CHARS],
            created_ms=now_ms()))
    return NewApiKey(key, role, t, created)


def create_api_key(db: Database, tenant_name: str, role: str | None = None) -> str:
    """A new API key for ``tenant_name`` (creating the tenant); see :func:`issue_api_key`."""
    return issue_api_key(db, tenant_name, role).key


def create_jwt_key(db: Database, tenant_name: str) -> str:
    """Give ``tenant_name`` a new symmetric JWT key, switching it to JWT mode."""
    t = ensure_tenant(db, tenant_name)
    key = secrets.token_urlsafe(32)
    with db.write() as conn:
        conn.execute(sa.update(tenant).where(tenant.c.id == t.id).values(jwt_secret=key))
    return key


def has_tenants(db: Database) -> bool:
    with db.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(tenant)).scalar_one() > 0


_KEY_COLUMNS = (api_key.c.id.label("key_id"), api_key.c.role, api_key.c.prefix,
                api_key.c.created_ms, tenant.c.id, tenant.c.name, tenant.c.jwt_secret)

# Every request runs this: the statement is built once.
_BY_KEY = (sa.select(*_KEY_COLUMNS)
           .join(api_key, api_key.c.tenant_id == tenant.c.id)
           .where(api_key.c.key_hash == sa.bindparam("hash")))


def _api_key(row: Any) -> ApiKey:
    return ApiKey(row.key_id, Tenant(row.id, row.name, row.jwt_secret), row.role, row.prefix,
                  row.created_ms)


def key_for(db: Database, key: str) -> ApiKey | None:
    """The stored API key ``key`` (with its tenant and role), or None."""
    with db.read() as conn:
        row = conn.execute(_BY_KEY, {"hash": hash_key(key)}).first()
    return _api_key(row) if row else None


def tenant_for_key(db: Database, key: str) -> Tenant | None:
    k = key_for(db, key)
    return k.tenant if k else None


def list_api_keys(db: Database, tenant_name: str) -> list[ApiKey]:
    """The API keys of ``tenant_name``, oldest first (KeyAdminError: no such tenant)."""
    with db.read() as conn:
        if _tenant_row(conn, tenant_name) is None:
            raise KeyAdminError(f"no tenant {tenant_name!r}")
        rows = conn.execute(sa.select(*_KEY_COLUMNS)
                            .join(api_key, api_key.c.tenant_id == tenant.c.id)
                            .where(tenant.c.name == tenant_name)
                            .order_by(api_key.c.created_ms, api_key.c.id)).all()
    return [_api_key(r) for r in rows]


def _matches(k: Any, ref: str) -> bool:
    if ref.isdigit() and int(ref) == k.key_id:
        return True
    if len(ref) >= MIN_REF_CHARS and k.prefix and k.prefix.startswith(ref):
        return True
    return len(ref) > PREFIX_CHARS and k.key_hash == hash_key(ref)  # the key itself


def revoke_api_key(db: Database, tenant_name: str, ref: str, force: bool = False) -> ApiKey:
    """Delete the key of ``tenant_name`` that ``ref`` names: its id, the start of its
    prefix (at least :data:`MIN_REF_CHARS` characters) or the key itself.

    The tenant's last admin key is kept unless ``force``: without one, nobody can manage
    the tenant's Data Lake users over HTTP until ``apikey create --role admin``.
    """
    ref = ref.strip()
    with db.write() as conn:
        row = _tenant_row(conn, tenant_name, lock=True)
        if row is None:
            raise KeyAdminError(f"no tenant {tenant_name!r}")
        keys = conn.execute(
            sa.select(*_KEY_COLUMNS, api_key.c.key_hash)
            .join(api_key, api_key.c.tenant_id == tenant.c.id)
            .where(tenant.c.id == row.id)).all()
        found = [k for k in keys if _matches(k, ref)]
        if not found:
            raise KeyAdminError(
                f"no key of tenant {tenant_name!r} matches {ref!r}: give the id or at least "
                f"{MIN_REF_CHARS} characters of the prefix `apikey list` shows")
        if len(found) > 1:
            ids = ", ".join(str(k.key_id) for k in found)
            raise KeyAdminError(f"{ref!r} matches several keys of tenant {tenant_name!r} "
                                f"(ids {ids}): give the one's whole prefix, or its id")
        k = _api_key(found[0])
        if k.is_admin and not force and sum(x.role == ADMIN for x in keys) == 1:
            raise KeyAdminError(
                f"key {k.id} is the last admin key of tenant {tenant_name!r}: without it "
                "nobody can manage the tenant's Data Lake users and quota over HTTP. Make "
                "another first (apikey create --role admin), or pass --force")
        conn.execute(sa.delete(api_key).where(api_key.c.id == k.id))
    return k


def _claim_seconds(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise APIError(401, f"invalid JWT: '{name}' must be a number (seconds since the epoch)")
    return float(value)


def verify_jwt(token: str, t: Tenant, leeway: int, max_lifetime: int = 3600) -> None:
    """Check an HS256 token against the tenant's key; raise 401 saying what is wrong.

    Besides the signature and expiry, a token may live at most ``max_lifetime`` seconds
    (``exp - iat``), may not expire further than that (plus ``leeway``) from now, and may
    not be issued in the future (beyond ``leeway``): a stolen long-lived token is not
    a second, permanent key.
    """
    assert t.jwt_secret
    try:
        claims = jwt.decode(token, t.jwt_secret, algorithms=["HS256"], leeway=leeway,
                            options={"require": ["exp", "iat"], "verify_iat": False})
    except jwt.ExpiredSignatureError:
        raise APIError(401, "JWT has expired") from None
    except jwt.InvalidTokenError as exc:
        raise APIError(401, f"invalid JWT: {exc}") from None
    claimed = claims.get("tenant")
    if claimed is not None and claimed != t.name:
        raise APIError(401, "invalid JWT: issued for another tenant")
    exp, iat = _claim_seconds(claims, "exp"), _claim_seconds(claims, "iat")
    now = time.time()
    if iat > now + leeway:
        raise APIError(401, f"invalid JWT: issued in the future (iat is {iat - now:.0f} s "
                       f"ahead of the server's clock; {leeway} s of skew are tolerated)")
    if exp > now + max_lifetime + leeway:
        raise APIError(401, f"invalid JWT: expires too far ahead ({exp - now:.0f} s from "
                       f"now; this server accepts tokens that live at most {max_lifetime} s "
                       "- jwt_max_lifetime_seconds)")
    if exp - iat > max_lifetime:
        raise APIError(401, f"invalid JWT: lifetime exp - iat is {exp - iat:.0f} s; this "
                       f"server accepts at most {max_lifetime} s (jwt_max_lifetime_seconds)")


@secured("ApiKey")
def current_key(conn: HTTPConnection) -> ApiKey:
    """FastAPI dependency: the API key the request authenticates with (and, in JWT mode,
    a valid token), or 401.

    ``conn`` is any HTTP connection: a plain request, an SSE stream or a WebSocket (where
    the app closes the socket with code 1008 and the message instead of answering 401:
    see :func:`pyconnector_server.deps.install`).
    """
    key = conn.headers.get(API_KEY_HEADER)
    if not key:
        raise APIError(401, f"missing API key: send it in the '{API_KEY_HEADER}' header")
    state = conn.app.state
    k = key_for(state.db, key)
    if k is None:
        raise APIError(401, "unknown API key")
    if k.tenant.jwt_secret:
        header = conn.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise APIError(401, "this tenant is in JWT mode: send 'Authorization: Bearer <token>'")
        settings = state.settings
        verify_jwt(token.strip(), k.tenant, settings.jwt_leeway_seconds,
                   settings.jwt_max_lifetime_seconds)
    return k


async def current_tenant(k: ApiKey = Depends(current_key)) -> Tenant:
    """FastAPI dependency: the tenant the request authenticates as, or 401 (``async``: no
    I/O here, so no worker-thread hop; :func:`current_key` does the lookup)."""
    return k.tenant

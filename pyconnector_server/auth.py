"""Tenants, API keys (hashed at rest) and JWT verification.

Every request names its tenant with ``x-api-key``. A tenant with a JWT key (JWT mode)
must also send ``Authorization: Bearer <HS256 token signed with that key>``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import jwt
import sqlalchemy as sa
from fastapi import Request

from .db import Database, api_key, tenant
from .errors import APIError

API_KEY_HEADER = "x-api-key"


@dataclass(frozen=True)
class Tenant:
    id: int
    name: str
    jwt_secret: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


def ensure_tenant(db: Database, name: str) -> Tenant:
    """Return tenant ``name``, creating it if needed."""
    with db.write() as conn:
        row = conn.execute(sa.select(tenant).where(tenant.c.name == name)).first()
        if row is None:
            tid = conn.execute(
                sa.insert(tenant).values(name=name, created_ms=_now_ms())
            ).inserted_primary_key[0]
            return Tenant(tid, name)
        return Tenant(row.id, row.name, row.jwt_secret)


def create_api_key(db: Database, tenant_name: str) -> str:
    """Create a new API key for ``tenant_name`` (creating the tenant) and return it."""
    t = ensure_tenant(db, tenant_name)
    key = secrets.token_hex(32)
    with db.write() as conn:
        conn.execute(sa.insert(api_key).values(
            tenant_id=t.id, key_hash=hash_key(key), created_ms=_now_ms()))
    return key


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


# Every request runs this: the statement is built once.
_BY_KEY = (sa.select(tenant.c.id, tenant.c.name, tenant.c.jwt_secret)
           .join(api_key, api_key.c.tenant_id == tenant.c.id)
           .where(api_key.c.key_hash == sa.bindparam("hash")))


def tenant_for_key(db: Database, key: str) -> Tenant | None:
    with db.read() as conn:
        row = conn.execute(_BY_KEY, {"hash": hash_key(key)}).first()
    return Tenant(row.id, row.name, row.jwt_secret) if row else None


def verify_jwt(token: str, t: Tenant, leeway: int) -> None:
    """Check an HS256 token against the tenant's key; raise 401 saying what is wrong."""
    assert t.jwt_secret
    try:
        claims = jwt.decode(token, t.jwt_secret, algorithms=["HS256"], leeway=leeway,
                            options={"require": ["exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise APIError(401, "JWT has expired") from None
    except jwt.InvalidTokenError as exc:
        raise APIError(401, f"invalid JWT: {exc}") from None
    claimed = claims.get("tenant")
    if claimed is not None and claimed != t.name:
        raise APIError(401, "invalid JWT: issued for another tenant")


def current_tenant(request: Request) -> Tenant:
    """FastAPI dependency: the tenant the request authenticates as, or 401."""
    key = request.headers.get(API_KEY_HEADER)
    if not key:
        raise APIError(401, f"missing API key: send it in the '{API_KEY_HEADER}' header")
    state = request.app.state
    t = tenant_for_key(state.db, key)
    if t is None:
        raise APIError(401, "unknown API key")
    if t.jwt_secret:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise APIError(401, "this tenant is in JWT mode: send 'Authorization: Bearer <token>'")
        verify_jwt(token.strip(), t, state.settings.jwt_leeway_seconds)
    return t

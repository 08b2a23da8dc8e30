"""Data Lake tables, in the platform's shared metadata: users, files, metadata, shares,
relations and per-tenant quotas. Blobs live in the blob store under ``dls_file.blob_key``."""

from __future__ import annotations

import sqlalchemy as sa

from ..db import metadata

_fk = dict(ondelete="CASCADE")

# DLS users of a tenant, each with one key (x-dls-key), stored hashed like API keys.
user = sa.Table(
    "dls_user", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

# One row per tenant that uses the DLS: its quota (NULL: the server's default) and the
# row that serialises the quota check of concurrent uploads (SELECT … FOR UPDATE).
tenant_storage = sa.Table(
    "dls_tenant", metadata,
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), primary_key=True),
    sa.Column("quota_bytes", sa.BigInteger),
)

# The catalog. `path` is the URI after `<tenant>/<owner>/`: [directory/][savepoint/]filename.
file = sa.Table(
    "dls_file", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("dls_user.id", **_fk), nullable=False),
    sa.Column("path", sa.String(600), nullable=False),
    sa.Column("directory", sa.String(255), nullable=False, default=""),
    sa.Column("savepoint", sa.String(50), nullable=False, default=""),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("comment", sa.String(255), nullable=False, default=""),
    sa.Column("blob_key", sa.String(255), nullable=False, unique=True),
    # SHA-256 of the content (hex), computed while the bytes stream in; NULL only for
    # files stored before revision 0002.
    sa.Column("sha256", sa.String(64)),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.Integer, sa.ForeignKey("dls_user.id", ondelete="SET NULL")),
    sa.UniqueConstraint("owner_id", "path"),
    sa.Index("ix_dls_file_tenant_created", "tenant_id", "created_ms"),
    sa.Index("ix_dls_file_owner_directory", "owner_id", "directory"),
)

# Metadata of files: `key=value`. A private key (`private@key`) is stored as
# `<user id>@key`; `dls:` keys are the platform's. `num` is the value as a number when it
# is one, so `rate>=5` compares numbers.
meta = sa.Table(
    "dls_meta", metadata,
    sa.Column("file_id", sa.Integer, sa.ForeignKey("dls_file.id", **_fk), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.String(1024), nullable=False),
    sa.Column("num", sa.Float(precision=53)),
    sa.Column("updated_by", sa.Integer, sa.ForeignKey("dls_user.id", ondelete="SET NULL")),
    sa.Index("ix_dls_meta_key_value", "key", "value", "file_id"),
    sa.Index("ix_dls_meta_key_num", "key", "num", "file_id"),
)

# A grant of R/W/D to another user of the tenant: on one file (file_id), or on a
# directory of the owner and everything below it (directory; "" is the owner's root).
share = sa.Table(
    "dls_share", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("dls_user.id", **_fk), nullable=False),
    sa.Column("grantee_id", sa.Integer, sa.ForeignKey("dls_user.id", **_fk), nullable=False),
    sa.Column("file_id", sa.Integer, sa.ForeignKey("dls_file.id", **_fk)),
    sa.Column("directory", sa.String(255)),
    sa.Column("permissions", sa.String(3), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_dls_share_grantee", "grantee_id"),
    sa.Index("ix_dls_share_file", "file_id"),
)

# A named, ad-hoc link from one file to another ("derivedFrom", "calibrates", …).
relation = sa.Table(
    "dls_relation", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("dls_file.id", **_fk), nullable=False),
    sa.Column("target_id", sa.Integer, sa.ForeignKey("dls_file.id", **_fk), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("dls_user.id", ondelete="SET NULL")),
    sa.UniqueConstraint("source_id", "target_id", "name"),
    sa.Index("ix_dls_relation_target", "target_id"),
)

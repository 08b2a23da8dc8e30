"""Blob stores for the data lake, by URL: ``file://`` (the default, a directory),
``s3://`` (S3-compatible storage) and ``memory://`` (this process only, for tests).

A new store registers itself with ``@blob_stores.register("<scheme>")`` and is imported
below; see docs/contributing.md, "Adding a backend".
"""

from __future__ import annotations

from pathlib import Path

from ..registry import UnknownBackend
from . import local, memory, s3  # noqa: F401 - imported for their registration
from .base import BlobInfo, BlobStore, BlobWriter, blob_stores, check_key

__all__ = ["BlobInfo", "BlobStore", "BlobWriter", "UnknownBackend", "blob_stores", "check_key",
           "open_blob_store"]


def open_blob_store(url: str, default_root: str | Path,
                    s3_endpoint_url: str | None = None) -> BlobStore:
    """The store a URL names: ``""`` → ``default_root``; ``file:///path``;
    ``s3://bucket/prefix``; ``memory://``. An unknown scheme raises
    :class:`UnknownBackend` (a :class:`ValueError`) listing the known ones."""
    if not url:
        url = Path(default_root).resolve().as_uri()
    return blob_stores.open(url, default_root=default_root,
                            s3_endpoint_url=s3_endpoint_url or None)

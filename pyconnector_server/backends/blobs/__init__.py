"""Blob stores for the data lake: local directory (default) and S3-compatible storage."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from .base import BlobStore, BlobWriter, check_key

__all__ = ["BlobStore", "BlobWriter", "check_key", "open_blob_store"]


def open_blob_store(url: str, default_root: str | Path,
                    s3_endpoint_url: str | None = None) -> BlobStore:
    """The store a URL names: ``""`` → ``default_root``; ``file:///path``; ``s3://bucket/prefix``."""
    if not url:
        url = Path(default_root).resolve().as_uri()
    if url.startswith("file://"):
        from .local import LocalBlobStore

        return LocalBlobStore(unquote(urlparse(url).path))
    if url.startswith("s3://"):
        from .s3 import S3BlobStore

        return S3BlobStore(url, endpoint_url=s3_endpoint_url or None)
    raise ValueError(f"unsupported blob store URL {url!r}: use file:///path or "
                     "s3://bucket/prefix")

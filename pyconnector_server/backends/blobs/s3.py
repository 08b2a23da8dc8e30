"""Blobs as objects in an S3-compatible bucket, through fsspec/s3fs (``s3://bucket/prefix``).

Credentials come from the standard AWS sources (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, profiles,
instance roles); ``endpoint_url`` points at a non-AWS service (MinIO, Ceph, moto…).

An object appears in S3 only when its upload completes (``PutObject``, or
``CompleteMultipartUpload`` for big ones), so a write goes straight to its key and
:meth:`S3Writer.abort` aborts the multipart upload: nothing is ever half visible. A
multipart upload that a killed server never finished still holds its parts (and is billed)
until :meth:`S3BlobStore.sweep_unfinished` aborts it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from .base import CHUNK, BlobInfo, BlobStore, BlobWriter, check_key, check_prefix

# Multipart part size: S3 wants >= 5 MiB; bigger parts mean fewer requests.
BLOCK = 16 << 20


def _s3fs() -> Any:
    try:
        import s3fs
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("S3 blob storage needs s3fs: pip install 'pyconnector[server,s3]'"
                           ) from None
    return s3fs


class S3Writer(BlobWriter):
    """Writes through an s3fs file: closing it completes the upload, and publishes it."""

    def _discard(self) -> None:
        try:
            self.fh.discard()  # aborts a multipart upload begun for a big object
        finally:
            self.fh.closed = True  # so that closing (or GC) does not upload the part


class S3BlobStore(BlobStore):
    """Blobs under ``s3://bucket/prefix``; a key ``a/b`` is the object ``prefix/a/b``."""

    kind = "s3"

    def __init__(self, url: str, endpoint_url: str | None = None,
                 **options: Any) -> None:
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.base = f"{bucket}/{self.prefix}" if self.prefix else bucket
        client_kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
        # No listing cache: other servers write to the same bucket.
        self.fs = _s3fs().S3FileSystem(
            client_kwargs=client_kwargs, use_listings_cache=False, skip_instance_cache=True,
            default_block_size=BLOCK, **options)

    def _path(self, key: str) -> str:
        return f"{self.base}/{check_key(key)}"

    def writer(self, key: str) -> BlobWriter:
        return S3Writer(self.fs.open(self._path(key), "wb", block_size=BLOCK))

    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK) -> Iterator[bytes]:
        path = self._path(key)
        size = self.size(key)
        if size is None:
            raise FileNotFoundError(key)
        stop = size if end is None else min(end, size)

        def chunks() -> Iterator[bytes]:
            # Plain ranged GETs, one per chunk: no read-ahead cache to hold in memory.
            pos = start
            while pos < stop:
                data = self.fs.cat_file(path, start=pos, end=min(stop, pos + chunk_size))
                if not data:
                    return
                pos += len(data)
                yield data

        return chunks()

    def size(self, key: str) -> int | None:
        try:
            return int(self.fs.info(self._path(key))["size"])
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    def list_with_age(self, prefix: str = "") -> Iterator[BlobInfo]:
        check_prefix(prefix)
        # Ask S3 for the deepest "directory" the prefix names, not the whole bucket.
        top = self.base + ("/" + prefix.rsplit("/", 1)[0] if "/" in prefix else "")
        try:
            found = self.fs.find(top, detail=True)
        except FileNotFoundError:
            return iter(())
        strip = len(self.base) + 1
        out = sorted(BlobInfo(path[strip:], int(info["size"]), _epoch(info.get("LastModified")))
                     for path, info in found.items()
                     if info.get("type") != "directory" and path[strip:].startswith(prefix))
        return iter(out)

    def sweep_unfinished(self, before: float) -> int:
        """Abort the multipart uploads under this store's prefix that began, and last
        received a part, before ``before`` (a long upload still sending parts lives)."""
        n = 0
        args: dict[str, Any] = {"Bucket": self.bucket,
                                "Prefix": f"{self.prefix}/" if self.prefix else ""}
        while True:
            page = self.fs.call_s3("list_multipart_uploads", **args)
            for up in page.get("Uploads", []):
                if _epoch(up.get("Initiated")) < before and \
                        self._last_part(up["Key"], up["UploadId"]) < before:
                    try:
                        self.fs.call_s3("abort_multipart_upload", Bucket=self.bucket,
                                        Key=up["Key"], UploadId=up["UploadId"])
                    except FileNotFoundError:  # completed or aborted meanwhile
                        continue
                    n += 1
            if not page.get("IsTruncated"):
                return n
            args.update(KeyMarker=page.get("NextKeyMarker", ""),
                        UploadIdMarker=page.get("NextUploadIdMarker", ""))

    def _last_part(self, key: str, upload_id: str) -> float:
        """When the newest part of a multipart upload arrived (0: it has none)."""
        newest = 0.0
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id}
        while True:
            try:
                page = self.fs.call_s3("list_parts", **args)
            except FileNotFoundError:  # completed or aborted meanwhile
                return time.time()
            for part in page.get("Parts", []):
                newest = max(newest, _epoch(part.get("LastModified")))
            if not page.get("IsTruncated"):
                return newest
            args["PartNumberMarker"] = page["NextPartNumberMarker"]


def _epoch(when: Any) -> float:
    """S3's time stamps (datetimes) as epoch seconds; an unknown one counts as now, so
    nothing is swept on a guess."""
    return when.timestamp() if hasattr(when, "timestamp") else time.time()

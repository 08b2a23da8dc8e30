"""Blobs as objects in an S3-compatible bucket, through fsspec/s3fs (``s3://bucket/prefix``).

Credentials come from the standard AWS sources (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, profiles,
instance roles); ``endpoint_url`` points at a non-AWS service (MinIO, Ceph, moto…).

An object appears in S3 only when its upload completes (``PutObject``, or
``CompleteMultipartUpload`` for big ones), so a write goes straight to its key and
:meth:`S3Writer.abort` aborts the multipart upload: nothing is ever half visible. A
multipart upload that a killed server never finished still holds its parts (and is billed)
until :meth:`S3BlobStore.sweep_unfinished` aborts it.

**Errors.** Every primitive runs inside :func:`~pyconnector_server.backends.errors.boundary`
with :func:`s3_error`: an unreachable or overloaded service (connection refused, timeouts,
``SlowDown``, 5xx) becomes :class:`BackendUnavailable` (503 with ``Retry-After``), any
other refusal (access denied, no such bucket, bad credentials) :class:`BackendError`
(502); a missing object stays :class:`FileNotFoundError`. Timeouts and retries are short
(:data:`CONFIG`), so a client hears about an S3 outage in seconds, not minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ..errors import BackendError, BackendUnavailable, translated, translated_iter
from .base import CHUNK, BlobInfo, BlobStore, BlobWriter, blob_stores, check_key, check_prefix

# Multipart part size: S3 wants >= 5 MiB; bigger parts mean fewer requests.
BLOCK = 16 << 20

#: botocore's client settings: botocore's defaults (60 s timeouts, and s3fs retrying
#: botocore's retries) keep a request waiting minutes on a dead endpoint. A part of
#: 16 MiB is sent well within the read timeout on any link the platform supports.
CONFIG: dict[str, Any] = {"connect_timeout": 5, "read_timeout": 30,
                          "retries": {"mode": "standard", "max_attempts": 2}}
#: how many times s3fs itself tries a call that failed on the network
S3FS_RETRIES = 2

# S3 error codes that say "try again later", not "you may not".
_TRANSIENT_CODES = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "InternalError",
                    "Throttling", "ThrottlingException", "RequestTimeTooSkewed", "500", "503"}


def s3_error(exc: BaseException) -> BackendError | None:
    """Our error for an exception of botocore, aiobotocore, aiohttp or s3fs; ``None`` for
    others (a missing object's :class:`FileNotFoundError`, a caller's own error)."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - no S3 store can exist without botocore
        return None
    cause = exc.__cause__
    if isinstance(exc, OSError) and isinstance(cause, ClientError) \
            and not isinstance(exc, BotoCoreError):
        # s3fs turned a ClientError into a builtin: judge by the original.
        code = str(cause.response.get("Error", {}).get("Code", ""))
        if isinstance(exc, FileNotFoundError) and code != "NoSuchBucket":
            return None  # no such object: part of the store's contract
        return _client_error(cause)
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, BotoConnectionError | HTTPClientError | TimeoutError) or \
            type(exc).__module__.startswith(("aiohttp", "fsspec")):
        # The message names no host: the client needs to know to wait, not our network.
        return BackendUnavailable("blob storage unavailable: the storage service cannot be "
                                  f"reached ({type(exc).__name__}); try again later")
    if isinstance(exc, BotoCoreError):  # no credentials, bad endpoint URL, …
        return BackendError(f"blob storage failed: {exc}")
    return None


def _client_error(exc: Any) -> BackendError:
    """Our error for an answer of the S3 service."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    text = f"{error.get('Message') or exc} ({code})" if code else str(exc)
    if code in _TRANSIENT_CODES:
        return BackendUnavailable(f"blob storage unavailable: {text}")
    return BackendError(f"blob storage failed: {text}")


_s3_errors = translated(s3_error)


def _s3fs() -> Any:
    try:
        import s3fs
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("S3 blob storage needs s3fs: pip install 'pyconnector-platform[server,s3]'"
                           ) from None
    return s3fs


class S3Writer(BlobWriter):
    """Writes through an s3fs file: closing it completes the upload, and publishes it."""

    write = _s3_errors(BlobWriter.write)  # sends a part every BLOCK bytes
    commit = _s3_errors(BlobWriter.commit)

    @_s3_errors
    def _discard(self) -> None:
        try:
            self.fh.discard()  # aborts a multipart upload begun for a big object
        finally:
            self.fh.closed = True  # so that closing (or GC) does not upload the part


@blob_stores.register("s3")
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
        config = {**CONFIG, **options.pop("config_kwargs", {})}
        # No listing cache: other servers write to the same bucket.
        self.fs = _s3fs().S3FileSystem(
            client_kwargs=client_kwargs, use_listings_cache=False, skip_instance_cache=True,
            default_block_size=BLOCK, config_kwargs=config, **options)
        self.fs.retries = S3FS_RETRIES

    @classmethod
    def from_url(cls, url: str, *, s3_endpoint_url: str | None = None,
                 **_context: Any) -> S3BlobStore:
        """``s3://bucket/prefix``, on ``s3_endpoint_url`` (None: AWS)."""
        return cls(url, endpoint_url=s3_endpoint_url)

    def _path(self, key: str) -> str:
        return f"{self.base}/{check_key(key)}"

    @_s3_errors
    def writer(self, key: str) -> BlobWriter:
        return S3Writer(self.fs.open(self._path(key), "wb", block_size=BLOCK))

    @_s3_errors
    def read(self, key: str, start: int = 0, end: int | None = None,
             chunk_size: int = CHUNK) -> Iterator[bytes]:
        path = self._path(key)
        size = self.size(key)
        if size is None:
            # HEAD of an object in a missing bucket is a plain 404: ask about the bucket,
            # so that a deleted bucket is not taken for a missing file.
            try:
                self.fs.call_s3("head_bucket", Bucket=self.bucket)
            except FileNotFoundError:
                raise BackendError("blob storage failed: The specified bucket does not "
                                   "exist (NoSuchBucket)") from None
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

        return translated_iter(chunks(), s3_error)

    @_s3_errors
    def size(self, key: str) -> int | None:
        try:
            return int(self.fs.info(self._path(key))["size"])
        except FileNotFoundError:
            return None

    @_s3_errors
    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._path(key))
        except FileNotFoundError:
            pass

    @_s3_errors
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

    @_s3_errors
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

"""A failing blob store answers in the one error shape: 503 + Retry-After when S3 cannot be
reached, 502 when it refuses (no such bucket); never a traceback nor a bare 500. And the
``memory://`` store serves the DLS like any other."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from dls_helper import DLS, Dls

from pyconnector_server.backends.blobs.s3 import s3_error
from pyconnector_server.backends.errors import BackendError, BackendUnavailable


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_error_shape(r: Any, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) - {"key"} == {"code", "message"}, body  # key: TCUP's, on the DLS
    assert body["code"] == status and body["message"].startswith(words), body
    assert "Traceback" not in r.text and "internal error" not in r.text


def _assert_unavailable(r: Any) -> None:
    _assert_error_shape(r, 503, "blob storage unavailable: ")
    assert r.headers["retry-after"] == "5"
    assert "127.0.0.1" not in r.text  # the client is told to wait, not our network


@pytest.fixture
def s3_down(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> Dls:
    """A DLS user of an app whose S3 endpoint refuses connections."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = f"http://127.0.0.1:{_closed_port()}"
    return Dls(make_app(blobs="s3://pyc-bucket/blobs", s3_endpoint_url=s3), "alice")


def test_an_upload_to_unreachable_s3_is_503_quickly(s3_down: Dls) -> None:
    began = time.monotonic()
    r = s3_down.upload("alice", b"a,b\n1,2\n", "f.csv")
    assert time.monotonic() - began < 20  # botocore's defaults would wait minutes
    _assert_unavailable(r)
    # Nothing was recorded: the catalog holds no file that has no bytes.
    listed = s3_down.api.get(f"{DLS}/catalog", headers=s3_down.headers("alice"))
    assert listed.status_code == 200 and "f.csv" not in listed.text


def test_a_download_from_unreachable_s3_is_503(app_opener: Any, tmp_path: Path,
                                               s3_url: str, s3_endpoint: str) -> None:
    data_dir = tmp_path / "data"
    # Upload while S3 is up, then restart the platform on the same database with an
    # endpoint where nothing listens.
    with app_opener(data_dir, blobs=s3_url, s3_endpoint_url=s3_endpoint) as api:
        dls = Dls(api, "alice")
        assert dls.upload("alice", b"kept", "f.bin").status_code == 201
        uri = dls.uri("alice", "f.bin")
        headers = {"x-api-key": api.api_key, **dls.headers("alice")}
    down = f"http://127.0.0.1:{_closed_port()}"
    with app_opener(data_dir, blobs=s3_url, s3_endpoint_url=down) as api:
        began = time.monotonic()
        r = api.client.get(f"{DLS}/file", params={"file-uri": uri}, headers=headers)
        assert time.monotonic() - began < 20
        _assert_unavailable(r)
        listed = api.client.get(f"{DLS}/catalog", headers=headers)
        assert listed.status_code == 200 and "f.bin" in listed.text  # the file is still there


def test_no_credentials_is_502_with_the_reason(make_app: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3 = f"http://127.0.0.1:{_closed_port()}"
    dls = Dls(make_app(blobs="s3://pyc-bucket/blobs", s3_endpoint_url=s3), "alice")
    r = dls.upload("alice", b"x", "f.bin")
    _assert_error_shape(r, 502, "blob storage failed: Unable to locate credentials")
    assert "retry-after" not in r.headers  # an operator must act first


def test_a_missing_bucket_is_502_for_upload_and_download(make_app: Any, s3_url: str,
                                                         s3_endpoint: str) -> None:
    missing = f"s3://pyc-missing-{uuid.uuid4().hex[:8]}/blobs"
    dls = Dls(make_app(blobs=missing, s3_endpoint_url=s3_endpoint), "alice")
    _assert_error_shape(dls.upload("alice", b"x", "f.bin"), 502, "blob storage failed: ")
    assert "NoSuchBucket" in dls.upload("alice", b"x" * (20 << 20), "big.bin").text

    # A file uploaded before its bucket went away is not "not found": storage failed.
    dls = Dls(make_app(blobs=s3_url, s3_endpoint_url=s3_endpoint), "alice")
    assert dls.upload("alice", b"gone soon", "f.bin").status_code == 201
    bucket = s3_url[len("s3://"):].split("/")[0]
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=bucket)
    r = dls.download("alice", dls.uri("alice", "f.bin"))
    _assert_error_shape(r, 502, "blob storage failed: ")
    assert "NoSuchBucket" in r.json()["message"] and "retry-after" not in r.headers


def test_the_dls_works_on_the_memory_store(make_app: Any) -> None:
    api = make_app(blobs="memory://")
    dls = Dls(api, "alice")
    data = bytes(range(256)) * 1000
    assert dls.upload("alice", data, "m.bin").status_code == 201
    uri = dls.uri("alice", "m.bin")
    assert dls.download("alice", uri).content == data
    r = dls.download("alice", uri, range="bytes=10-19")
    assert (r.status_code, r.content) == (206, data[10:20])
    assert api.get(f"{DLS}/admin/storage").json()["type"] == "MEMORY"
    assert dls.delete("alice", uri).json()[0]["code"] == 200
    assert list(api.app.state.dls.blobs.list()) == []
    assert not (Path(api.app.state.settings.data_dir) / "blobs").exists()  # nothing on disk


def _client_error(code: str, message: str = "msg") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutObject")


def _by_s3fs(builtin: type[OSError], code: str) -> OSError:
    """A ClientError as s3fs re-raises it: a builtin whose cause is the original."""
    exc = builtin(code)
    exc.__cause__ = _client_error(code)
    return exc


@pytest.mark.parametrize(("exc", "expected"), [
    (EndpointConnectionError(endpoint_url="http://x"), BackendUnavailable),
    (ReadTimeoutError(endpoint_url="http://x"), BackendUnavailable),
    (TimeoutError("slow"), BackendUnavailable),
    (_client_error("SlowDown"), BackendUnavailable),
    (_client_error("503"), BackendUnavailable),
    (_client_error("AccessDenied"), BackendError),
    (_by_s3fs(PermissionError, "AccessDenied"), BackendError),
    (_by_s3fs(FileNotFoundError, "NoSuchBucket"), BackendError),
    (_by_s3fs(OSError, "InvalidObjectState"), BackendError),
    # part of the store's contract, or not the library's: left as they are
    (_by_s3fs(FileNotFoundError, "NoSuchKey"), None),
    (FileNotFoundError("t1/k"), None),
    (ConnectionError("the client went away"), None),
    (ValueError("invalid blob key"), None),
])
def test_which_s3_errors_are_translated(exc: BaseException, expected: type | None) -> None:
    ours = s3_error(exc)
    if expected is None:
        assert ours is None
    else:
        assert type(ours) is expected
        assert ours is not None and ours.message.startswith(
            "blob storage unavailable: " if expected is BackendUnavailable
            else "blob storage failed: ")

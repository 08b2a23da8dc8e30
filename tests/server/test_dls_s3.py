"""The DLS routes with blobs on S3 (moto's server on loopback)."""

from __future__ import annotations

import boto3
import pytest
from dls_helper import Dls


@pytest.fixture
def dls(make_app, s3_url: str, s3_endpoint: str) -> Dls:
    api = make_app(blobs=s3_url, s3_endpoint_url=s3_endpoint)
    return Dls(api, "alice")


def _objects(s3_url: str, endpoint: str) -> list[str]:
    bucket = s3_url[len("s3://"):].split("/")[0]
    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_upload_download_range_append_delete_on_s3(dls: Dls, s3_url: str,
                                                   s3_endpoint: str) -> None:
    data = bytes(range(256)) * 40_000  # ~10 MiB: a multipart upload
    assert dls.upload("alice", data, "big.bin", directory="raw").status_code == 201
    uri = dls.uri("alice", "raw/big.bin")
    assert dls.download("alice", uri).content == data
    r = dls.download("alice", uri, range="bytes=1000-1999")
    assert (r.status_code, r.content) == (206, data[1000:2000])
    keys = _objects(s3_url, s3_endpoint)
    assert len(keys) == 1 and keys[0].startswith("blobs/t")
    assert dls.upload("alice", b"tail", "big.bin", directory="raw",
                      mode="APPEND").status_code == 200
    assert dls.download("alice", uri, range="bytes=-4").content == b"tail"
    assert dls.upload("alice", b"v2", "big.bin", directory="raw",
                      mode="OVERWRITE").status_code == 200
    assert dls.download("alice", uri).content == b"v2"
    assert len(_objects(s3_url, s3_endpoint)) == 1  # the old object went
    assert dls.delete("alice", uri).json()[0]["code"] == 200
    assert _objects(s3_url, s3_endpoint) == []
    assert dls.api.get("/api/dls/admin/storage").json()["type"] == "S3"


def test_refused_upload_leaves_no_object_on_s3(make_app, s3_url: str, s3_endpoint: str
                                               ) -> None:
    api = make_app(blobs=s3_url, s3_endpoint_url=s3_endpoint, dls_quota_bytes=100)
    dls = Dls(api, "alice")

    def body():
        for _ in range(10):
            yield b"z" * 20

    r = api.client.post("/api/dls/file", params={"filename": "c"}, content=body(),
                        headers={**api.headers(), **dls.headers("alice")})
    assert r.status_code == 409
    assert _objects(s3_url, s3_endpoint) == []

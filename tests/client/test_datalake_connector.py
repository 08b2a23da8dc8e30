"""The Datalake connector against a real `pyconnector serve` process."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

import pyconnector
from pyconnector.datalake import metadata_items


@pytest.fixture
def dls(server):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    api_key = server.new_key(tenant)
    conn = pyconnector.connectors(api_key=api_key, URL=server.url,
                                  dls_key=server.dls_key(tenant, "ana"))
    d = conn.Datalake()
    d.tenant = tenant
    yield d
    conn.close()


def _file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_dataframes_from_csv_tsv_parquet_json_and_jsonl(dls, tmp_path: Path) -> None:
    frame = pd.DataFrame({"sensor": ["a", "b"], "value": [1.5, 2.5]})
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    files = {
        "d.csv": None, "d.tsv": "sensor\tvalue\na\t1.5\nb\t2.5\n", "d.parquet": None,
        "d.json": json.dumps([{"sensor": "a", "value": 1.5}, {"sensor": "b", "value": 2.5}]),
        "d.jsonl": '{"sensor": "a", "value": 1.5}\n{"sensor": "b", "value": 2.5}\n',
    }
    frame.to_csv(tmp_path / "d.csv", index=False)
    for name, text in files.items():
        path = tmp_path / name if text is None else _file(tmp_path, name, text)
        assert dls.uploadFile(path, directory="formats")["code"] == 201
        got = dls.getFile(f"{dls.tenant}/ana/formats/{name}", responseType="dataframe")
        pd.testing.assert_frame_equal(got, frame, obj=name)


def test_several_uris_make_one_table_with_a_file_column(dls, tmp_path: Path) -> None:
    for i in (1, 2):
        dls.uploadFile(_file(tmp_path, f"part{i}.csv", f"x\n{i}\n{i * 10}\n"))
    uris = [f"{dls.tenant}/ana/part1.csv", f"{dls.tenant}/ana/part2.csv"]
    df = dls.getFile(uris, responseType="dataframe")
    assert list(df.columns) == ["fileUri", "x"]
    assert df["x"].tolist() == [1, 10, 2, 20]
    assert df["fileUri"].tolist() == [uris[0]] * 2 + [uris[1]] * 2
    assert dls.getFile(uris[0]) == [{"x": 1}, {"x": 10}]  # json: records
    assert "| x  |" in dls.getFile(uris[0], responseType="table")
    assert dls.getFile(uris[0], responseType="csv") == "x\n1\n10\n"


def test_save_to_disk_bytes_and_ranges(dls, tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    src = tmp_path / "fw.bin"
    src.write_bytes(data)
    dls.uploadFile(src, directory="firmware", name="pump.bin", metadata={"version": "1.2"})
    uri = f"{dls.tenant}/ana/firmware/pump.bin"
    out = tmp_path / "out"
    out.mkdir()
    saved = dls.getFile([uri], responseType="file", target=out)
    assert saved == [out / "pump.bin"] and saved[0].read_bytes() == data
    one = dls.downloadFile(uri, target=tmp_path / "copy.bin")
    assert one == tmp_path / "copy.bin" and one.read_bytes() == data
    assert dls.getFile(uri, responseType="bytes") == data
    assert dls.getFile(uri, responseType="bytes", byteRange=(10, 20)) == data[10:20]
    assert dls.getFile(uri, responseType="bytes", byteRange=(25500, None)) == data[25500:]


def test_unparseable_csv_is_a_clear_data_error(dls, tmp_path: Path) -> None:
    dls.uploadFile(_file(tmp_path, "bad.csv", 'a,b\n1,2\n3,"unclosed\n'))
    with pytest.raises(pyconnector.DataError, match=r"cannot read '.*bad.csv' as CSV"):
        dls.getFile(f"{dls.tenant}/ana/bad.csv", responseType="dataframe")
    dls.uploadFile(_file(tmp_path, "ragged.csv", "a,b\n1,2\n3,4,5,6\n"))
    with pytest.raises(pyconnector.DataError, match="as CSV: Error tokenizing data"):
        dls.getFile(f"{dls.tenant}/ana/ragged.csv", responseType="dataframe")
    dls.uploadFile(_file(tmp_path, "broken.json", "{not json"))
    with pytest.raises(pyconnector.DataError, match="as JSON"):
        dls.getFile(f"{dls.tenant}/ana/broken.json", responseType="dataframe")
    dls.uploadFile(_file(tmp_path, "blob.bin", "\x00\x01"))
    with pytest.raises(pyconnector.DataError, match="format="):
        dls.getFile(f"{dls.tenant}/ana/blob.bin", responseType="dataframe")


def test_errors_are_pyconnector_errors(dls, server, tmp_path: Path) -> None:
    with pytest.raises(pyconnector.NotFoundError) as err:
        dls.getFile(f"{dls.tenant}/ana/missing.csv", responseType="dataframe")
    assert err.value.status == 404 and err.value.field == "file-uri"
    # A streamed answer's error names the request too, as does a search that found nothing.
    assert err.value.method == "GET" and err.value.url.startswith(f"{server.url}/api/dls/file?")
    assert str(err.value).endswith(f"(GET {err.value.url})")
    with pytest.raises(pyconnector.NotFoundError, match=r"\(GET .*/api/dls/catalog\?uri=") as err:
        dls.getFileInfo(f"{dls.tenant}/ana/missing.csv")
    src = _file(tmp_path, "once.csv", "a\n1\n")
    dls.uploadFile(src)
    with pytest.raises(pyconnector.ConflictError, match="already.exists"):
        dls.uploadFile(src)
    with pytest.raises(pyconnector.BadRequestError, match="directory"):
        dls.uploadFile(src, directory="../up")
    with pyconnector.connectors(api_key=server.new_key(dls.tenant), URL=server.url) as nokey:
        with pytest.raises(pyconnector.AuthenticationError, match="x-dls-key") as err:
            nokey.Datalake().getRelation()  # an application key alone: refused
        assert err.value.status == 403
        with pytest.raises(pyconnector.AuthenticationError) as err:
            nokey.Datalake(dlsKey="0" * 64).getRelation()
    assert err.value.status == 401


def test_search_explore_share_and_relations(dls, server, tmp_path: Path) -> None:
    for site, rate in (("pune", 5), ("pune", 12), ("goa", 1)):
        dls.uploadFile(_file(tmp_path, f"{site}{rate}.csv", "x\n1\n"), directory="sites",
                       metadata={"site": site, "rate": rate, "note": "a,b"})
    page = dls.searchFile(metadata="site='pune' & rate>=10")
    assert [f["filename"] for f in page["result"]] == ["pune12.csv"]
    df = dls.searchFile(metadata="site='pune'", sort="fileName", responseType="dataframe")
    assert df["filename"].tolist() == ["pune12.csv", "pune5.csv"]
    assert "note=a,b" in df["metadata"].iloc[0]
    assert "pune5.csv" in dls.searchFile(size="<1kb", responseType="table")
    info = dls.getFileInfo(f"{dls.tenant}/ana/sites/goa1.csv")
    assert info["size-bytes"] == 4 and info["permitted-action"] == "RWD"
    tree = dls.exploreDirectory(responseType="dataframe")
    assert tree[["type", "name"]].values.tolist() == [["directory", "sites"]]

    bo = dls.createUser("bo")
    assert bo["code"] == 201 and len(bo["dlsKey"]) == 64
    assert [u["user"] for u in dls.getUsers()] == ["ana", "bo"]
    with pyconnector.connectors(api_key=dls.http.config.api_key, URL=server.url,
                                dls_key=bo["dlsKey"]) as bo_conn:
        other = bo_conn.Datalake()
        assert other.searchFile()["count"] == 0
        assert dls.shareDirectory("sites", "bo")[0]["code"] == 200
        assert other.searchFile()["count"] == 3
        assert dls.getShares()[0]["directory"] == "sites"
        assert dls.revokeShare("bo", directory="sites")[0]["code"] == 200
        assert other.searchFile()["count"] == 0

    a, b = (f"{dls.tenant}/ana/sites/{n}.csv" for n in ("pune5", "pune12"))
    assert dls.createRelation(a, b, "precedes")["code"] == 201
    rel = dls.getRelation(responseType="dataframe")
    assert rel[["source", "relation", "target"]].values.tolist() == [[a, "precedes", b]]
    assert dls.getRelation(fileUri=b)[0]["relation"] == "precedes"
    assert dls.deleteRelation(a, b)["count"] == 1
    assert dls.getRelation() == []
    assert dls.deleteFile([a, b])[1]["code"] == 200
    assert dls.getStorage()["file-count"] == 1


def test_update_metadata_and_upload_modes(dls, tmp_path: Path) -> None:
    src = _file(tmp_path, "log.txt", "one\n")
    dls.uploadFile(src, metadata="level=info")
    uri = f"{dls.tenant}/ana/log.txt"
    assert dls.uploadFile(_file(tmp_path, "more.txt", "two\n"), fileUri=uri,
                          mode="APPEND")["message"] == "appended"
    assert dls.getFile(uri, responseType="bytes") == b"one\ntwo\n"
    dls.updateMetadata(uri, {"level": "debug", "private@mine": "yes"}, comment="c")
    meta = {m["name"]: m["value"] for m in dls.getFileInfo(uri)["metadata"]}
    assert meta["level"] == "debug" and meta["private@mine"] == "yes"


def test_progress_bar_when_asked(dls, tmp_path: Path, capsys) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(b"\0" * (3 << 20))
    dls.uploadFile(src, progress=True)
    dls.downloadFile(f"{dls.tenant}/ana/big.bin", target=tmp_path / "back.bin", progress=True)
    err = capsys.readouterr().err
    assert err.count("big.bin") >= 1 and "back.bin" in err and "3.00M" in err


def test_metadata_items_forms() -> None:
    assert metadata_items({"a": 1, "b": "x,y"}) == ["a=1", "b='x,y'"]
    assert metadata_items("a=1,b=2") == ["a=1,b=2"]
    assert metadata_items(["a=1"]) == ["a=1"]
    assert metadata_items(None) == []

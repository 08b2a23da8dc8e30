"""The connector's catalog calls with TCUP's explore and search options, against a real
`pyconnector serve` process: fetch, nameRegex, the flags, savepoints with '/', and
DLS times as tz-aware timestamps."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

import pyconnector


@pytest.fixture
def dls(server, tmp_path: Path):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    conn = pyconnector.connectors(api_key=server.new_key(tenant), URL=server.url,
                                  dls_key=server.dls_key(tenant, "ana"))
    d = conn.Datalake()
    for name, directory, savepoint in [("a.csv", "csv", "run/v1"), ("b.log", "csv", ""),
                                       ("c.csv", "csv/2024", "")]:
        path = tmp_path / name
        path.write_text("x\n1\n")
        assert d.uploadFile(path, directory=directory, savepoint=savepoint)["code"] == 201
    d.tenant = tenant
    yield d
    conn.close()


def test_explore_fetch_and_name_regex(dls) -> None:
    page = dls.exploreDirectory("csv", fetch="fileOnly", nameRegex=r"\.csv$")
    assert page["directories"] == []
    assert [(f["name"], f["path"], f["parent"]) for f in page["files"]] == [
        ("a.csv", "csv/run/v1/a.csv", "csv")]
    df = dls.exploreDirectory("csv", fetch="fileFirst", responseType="dataframe")
    assert df[["type", "name"]].values.tolist() == [
        ["file", "b.log"], ["file", "a.csv"], ["directory", "2024"]]
    with pytest.raises(pyconnector.PyConnectorError, match="nameRegex"):
        dls.exploreDirectory("csv", nameRegex=r"(a)\1")


def test_search_flags(dls) -> None:
    assert dls.searchFile(locked=False, deleted=False, ownFile=True)["count"] == 3
    assert dls.searchFile(locked=True)["count"] == 0
    assert dls.searchFile(savepoint="/run/v1")["result"][0]["uri"] == (
        f"{dls.tenant}/ana/csv/run/v1/a.csv")


def test_dls_times_are_tz_aware_in_dataframes_and_iso_in_tables(dls) -> None:
    found = dls.searchFile(sort="fileName", responseType="dataframe")
    for column in ("created-on", "updated-on"):
        assert str(found[column].dtype) == "datetime64[ms, UTC]"
    text = dls.searchFile(sort="fileName")["result"][0]["created-on"]
    assert found["created-on"].iloc[0] == pd.Timestamp(
        pd.to_datetime(text, format="%d-%b-%Y %H:%M:%S UTC", utc=True))
    tree = dls.exploreDirectory(responseType="dataframe")
    assert str(tree["created-on"].dtype) == "datetime64[ms, UTC]"
    table = dls.searchFile(responseType="table")
    assert "Z |" in table and " UTC" not in table

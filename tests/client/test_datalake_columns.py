"""Catalog tables are narrow unless asked: searchFile and exploreDirectory show a few
columns in ``responseType='table'``, every column with ``columns='all'``, the named ones
with a list (against a real `pyconnector serve` process)."""

from __future__ import annotations

import io
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
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("x\n1\n")
        assert d.uploadFile(tmp_path / name, directory="site/pune",
                            metadata={"site": "pune"})["code"] == 201
    yield d
    conn.close()


def _header(table: str) -> list[str]:
    return [c.strip() for c in table.splitlines()[1].strip("|").split("|")]


def test_search_table_is_narrow_unless_asked(dls) -> None:
    table = dls.searchFile(metadata="site='pune'", responseType="table")
    assert _header(table) == ["uri", "size-bytes", "created-on", "created-by"]
    assert max(len(line) for line in table.splitlines()) < 120, table
    assert "a.csv" in table and "sha256" not in table
    wide = dls.searchFile(metadata="site='pune'", responseType="table", columns="all")
    assert {"sha256", "permitted-action", "metadata"} <= set(_header(wide))
    # The other tabular types keep every column unless given a list.
    frame = dls.searchFile(metadata="site='pune'", responseType="dataframe")
    assert {"uri", "sha256", "metadata"} <= set(frame.columns)
    picked = dls.searchFile(metadata="site='pune'", responseType="dataframe",
                            columns=["filename", "sha256"])
    assert list(picked.columns) == ["filename", "sha256"] and len(picked) == 2
    text = dls.searchFile(metadata="site='pune'", responseType="csv", columns=["filename"])
    assert sorted(pd.read_csv(io.StringIO(text))["filename"]) == ["a.csv", "b.csv"]
    assert _header(dls.searchFile(responseType="table", columns="uri")) == ["uri"]
    assert dls.searchFile(metadata="site='pune'", columns=["uri"])["count"] == 2  # json whole


def test_unknown_column_names_the_columns_there_are(dls) -> None:
    with pytest.raises(pyconnector.PyConnectorError, match=r"no 'colour'.*uri.*sha256"):
        dls.searchFile(responseType="table", columns=["uri", "colour"])


def test_explore_table_is_narrow_unless_asked(dls) -> None:
    root = dls.exploreDirectory(responseType="table")
    assert _header(root) == ["type", "name", "size-bytes", "created-on", "created-by"]
    assert "| directory |" in root.replace("  ", " ") and "site" in root
    files = dls.exploreDirectory(path="site/pune", responseType="table")
    assert "a.csv" in files and "b.csv" in files and "sha256" not in files
    every = dls.exploreDirectory(path="site/pune", responseType="table", columns="all")
    assert "sha256" in _header(every)

"""The DLS lines of the seed guide, verbatim, against a real `pyconnector serve` process."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import pyconnector

pytestmark = pytest.mark.e2e

FLIGHTS = ("flight,origin,dest,delay_min\n"
           "AI101,BOM,DEL,12\n"
           "6E202,DEL,BLR,-3\n"
           "UK303,BLR,PNQ,45\n")


def _seed_data(server, api_key: str, key: str, tmp_path) -> None:
    """User `dlsadmin` of tenant `user1` uploads SampleFlightData1.csv into directory
    `csv`, savepoint `SampleFlightData1`, and relates it to a second file."""
    with pyconnector.connectors(api_key=api_key, URL=server.url, dls_key=key) as conn:
        dls = conn.Datalake()
        src = tmp_path / "SampleFlightData1.csv"
        src.write_text(FLIGHTS)
        dls.uploadFile(src, directory="csv", savepoint="SampleFlightData1",
                       metadata={"airline": "mixed", "rows": 3}, mode="OVERWRITE")
        summary = tmp_path / "summary.json"
        summary.write_text('[{"mean_delay_min": 18}]')
        dls.uploadFile(summary, directory="reports", mode="OVERWRITE")
        for rel in dls.getRelation():
            dls.deleteRelation(rel["source"], rel["target"])
        dls.createRelation("user1/dlsadmin/reports/summary.json",
                           "user1/dlsadmin/csv/SampleFlightData1/SampleFlightData1.csv",
                           "summarises")


def test_seed_guide_dls_lines_verbatim(any_server, tmp_path, capsys, request) -> None:
    api_key = any_server.new_key("user1")
    key = any_server.dls_key("user1", "dlsadmin")
    _seed_data(any_server, api_key, key, tmp_path)
    config = tmp_path / "ConfigFile.conf"
    config.write_text(f"URL={any_server.url}\napi_key={api_key}\ndls_key={key}\n")

    # --- from the guide ---
    # import pyconnector library
    import pyconnector
    # Load the configuration details from a file or using explicit parameters
    conn = pyconnector.connectors((str(config)))  # If configuration parameters present in a file  # noqa: UP034
    # Load Service oriented connector for Datalake
    dls = conn.Datalake()
    # For example, to get all the existing relations present in DLS :
    print(dls.getRelation())
    # To get the output as pretty table format:
    print(dls.getRelation(responseType = 'table'))
    # To get dataframe representation of any file:
    print(dls.getFile(fileUri =["user1/dlsadmin/csv/SampleFlightData1/SampleFlightData1.csv"],responseType='dataframe'))
    # --- end ---
    request.addfinalizer(conn.close)  # the guide leaves it open

    out = capsys.readouterr().out
    assert ("'source': 'user1/dlsadmin/reports/summary.json', 'relation': 'summarises', "
            "'target': 'user1/dlsadmin/csv/SampleFlightData1/SampleFlightData1.csv'") in out
    assert re.search(r"^\|\s+source\s+\|\s+relation\s+\|\s+target\s+\|", out, re.M)
    assert "| summarises |" in out
    assert "AI101" in out and "UK303" in out
    df = dls.getFile(fileUri=["user1/dlsadmin/csv/SampleFlightData1/SampleFlightData1.csv"],
                     responseType="dataframe")
    assert list(df.columns) == ["flight", "origin", "dest", "delay_min"]
    assert df["delay_min"].tolist() == [12, -3, 45]
    pd.testing.assert_frame_equal(df, pd.read_csv(tmp_path / "SampleFlightData1.csv"))

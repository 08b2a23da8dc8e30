"""The DLS lines of the seed guide, verbatim, against a real `pyconnector serve` process:
the guide connects with an API key and a URL, nothing else (no DLS key), and reads the
files of user `dlsadmin` of tenant `user1`. That key is tenant `user1`'s administrator
key, which acts as its administrator user `dlsadmin`; other keys get none of that."""

from __future__ import annotations

import re
import uuid

import pandas as pd
import pytest

import pyconnector

pytestmark = pytest.mark.e2e

FLIGHTS = ("flight,origin,dest,delay_min\n"
           "AI101,BOM,DEL,12\n"
           "6E202,DEL,BLR,-3\n"
           "UK303,BLR,PNQ,45\n")
URI = "user1/dlsadmin/csv/SampleFlightData1/SampleFlightData1.csv"


def _key(server, tenant: str, role: str) -> str:
    return server.cli("apikey", "create", "--tenant", tenant, "--role", role).strip()


def _seed_data(server, api_key: str, tmp_path) -> None:
    """Tenant `user1`'s administrator, with its API key alone (as user `dlsadmin`),
    uploads SampleFlightData1.csv into directory `csv`, savepoint `SampleFlightData1`,
    and relates it to a second file."""
    with pyconnector.connectors(api_key=api_key, URL=server.url) as conn:
        dls = conn.Datalake()
        src = tmp_path / "SampleFlightData1.csv"
        src.write_text(FLIGHTS)
        up = dls.uploadFile(src, directory="csv", savepoint="SampleFlightData1",
                            metadata={"airline": "mixed", "rows": 3}, mode="OVERWRITE")
        assert up["uri"] == URI, up
        summary = tmp_path / "summary.json"
        summary.write_text('[{"mean_delay_min": 18}]')
        dls.uploadFile(summary, directory="reports", mode="OVERWRITE")
        for rel in dls.getRelation():
            dls.deleteRelation(rel["source"], rel["target"])
        dls.createRelation("user1/dlsadmin/reports/summary.json", URI, "summarises")


def test_seed_guide_dls_lines_verbatim(any_server, tmp_path, capsys, request) -> None:
    # The guide's key: tenant user1's administrator key (a store kept from an earlier
    # run already has user1, so the role is asked for, not left to "first key").
    api_key = _key(any_server, "user1", "admin")
    _seed_data(any_server, api_key, tmp_path)
    config = tmp_path / "ConfigFile.conf"
    config.write_text(f"URL={any_server.url}\napi_key={api_key}\n")

    # --- from the guide ---
    # import pyconnector library
    import pyconnector
    # Load the configuration details from a file or using explicit parameters
    conn = pyconnector.connectors((str(config)))  # If configuration parameters present in a file  # noqa: UP034
    conn = pyconnector.connectors( api_key=api_key, URL= any_server.url )  # If user specifies configuration details
    # Load Service oriented connector for Datalake
    dls = conn.Datalake()
    # For example, to get all the existing relations present in DLS :
    print(dls.getRelation())
    # To get the output as pretty table format:
    print(dls.getRelation(responseType = 'table'))
    # To get dataframe representation of any file:
    print(dls.getFile(fileUri =["user1/dlsadmin/csv/SampleFlightData1/SampleFlightData1.csv"],responseType='dataframe'))
    # --- end ---
    request.addfinalizer(conn.close)  # the guide leaves it open; the first one sent nothing

    assert dls.dls_key is None  # no DLS key anywhere: the API key alone
    out = capsys.readouterr().out
    assert ("'source': 'user1/dlsadmin/reports/summary.json', 'relation': 'summarises', "
            f"'target': '{URI}'") in out
    assert re.search(r"^\|\s+source\s+\|\s+relation\s+\|\s+target\s+\|", out, re.M)
    assert "| summarises |" in out
    assert "AI101" in out and "UK303" in out
    df = dls.getFile(fileUri=[URI], responseType="dataframe")
    assert list(df.columns) == ["flight", "origin", "dest", "delay_min"]
    assert df["delay_min"].tolist() == [12, -3, 45]
    pd.testing.assert_frame_equal(df, pd.read_csv(tmp_path / "SampleFlightData1.csv"))
    assert dls.getFileInfo(URI)["created-by"] == "dlsadmin"


def test_other_keys_get_nothing_of_user1(any_server, tmp_path) -> None:
    """An app key of user1 alone gets 403; with an ordinary user's DLS key it is that
    user, who sees nothing of dlsadmin's; another tenant's admin key alone is that
    tenant's own dlsadmin, who sees nothing of user1's."""
    _seed_data(any_server, _key(any_server, "user1", "admin"), tmp_path)
    app_key = _key(any_server, "user1", "app")
    with pyconnector.connectors(api_key=app_key, URL=any_server.url) as conn:
        dls = conn.Datalake()
        for call in (dls.getRelation, lambda: dls.getFile([URI], responseType="bytes"),
                     lambda: dls.uploadFile(tmp_path / "summary.json")):
            with pytest.raises(pyconnector.AuthenticationError) as err:
                call()
            assert err.value.status == 403
            assert "x-dls-key" in err.value.message and "administrator" in err.value.message
    ana = any_server.dls_key("user1", f"ana{uuid.uuid4().hex[:6]}")
    with pyconnector.connectors(api_key=app_key, URL=any_server.url, dls_key=ana) as conn:
        dls = conn.Datalake()
        assert dls.getRelation() == []
        with pytest.raises(pyconnector.NotFoundError):
            dls.getFile([URI], responseType="bytes")
        assert "dlsadmin" not in str(dls.searchFile())
    other = _key(any_server, f"t-{uuid.uuid4().hex[:8]}", "admin")
    with pyconnector.connectors(api_key=other, URL=any_server.url) as conn:
        dls = conn.Datalake()
        assert dls.getRelation() == []
        assert dls.searchFile()["count"] == 0
        with pytest.raises(pyconnector.NotFoundError):
            dls.getFile([URI], responseType="bytes")
        with pytest.raises(pyconnector.NotFoundError):
            dls.getFileInfo(URI)
        # Its own files are its own dlsadmin's, under its own tenant.
        up = dls.uploadFile(tmp_path / "summary.json")
        assert up["uri"].endswith("/dlsadmin/summary.json")
        assert not up["uri"].startswith("user1/")

"""The SOS lines of the seed guide, verbatim, against a real `pyconnector serve` process."""

from __future__ import annotations

import pandas as pd
import pytest

import pyconnector

pytestmark = pytest.mark.e2e


def _seed_data(server, key: str) -> None:
    with pyconnector.connectors(api_key=key, URL=server.url) as conn:
        sos = conn.SensorObservation()
        sos.createFeature("tf1", description="test feature")
        sos.createSensor("ts1", "tf1", outputs=["obs1", {"name": "obs2", "type": "text"}])
        sos.insertObservation(sos.data("ts1", {"obs1": 1.5, "obs2": "test_1"}, "tf1",
                                       time="03-JUL-2015 13:10:00 IST"))
        sos.insertObservation(sos.data("ts1", {"obs1": 2.5, "obs2": "test_2"}, "tf1",
                                       time="03-JUL-2015 13:11:00 IST"))


def test_seed_guide_sos_lines_verbatim(any_server, tmp_path, capsys, request) -> None:
    key = any_server.new_key()
    _seed_data(any_server, key)
    config = tmp_path / "ConfigFile.conf"
    config.write_text(f"[pyconnector]\nURL = {any_server.url}\napi_key = {key}\n")

    # --- from the guide ---
    # import pyconnector library
    import pyconnector
    # Load the configuration details from a file or using explicit parameters
    conn = pyconnector.connectors((str(config)))  # If configuration parameters present in a file  # noqa: UP034
    conn = pyconnector.connectors( api_key=key, URL= any_server.url )  # If user specifies configuration details
    # Load Service oriented connector for Sensor observation
    sos = conn.SensorObservation()
    # For example, to get the count of all sensors and features :
    print(sos.getCount())
    # To get the output as pretty table format:
    print(sos.getCount(responseType = 'table'))
    # To get the datadrame representation of observation present in any sensor-feature :
    print(sos.getObservation(feature="tf1",sensor="ts1",responseType='dataframe'))
    # --- end ---
    request.addfinalizer(conn.close)  # the guide leaves it open; the first one sent nothing

    out = capsys.readouterr().out
    assert "{'sensors': 1, 'features': 1" in out
    assert "| sensors | features |" in out
    df = sos.getObservation(feature="tf1", sensor="ts1", responseType="dataframe")
    assert list(df.columns) == ["time", "sensor", "feature", "obs1", "obs2"]
    assert str(df["time"].dtype) == "datetime64[ms, UTC]"
    assert df["obs1"].tolist() == [1.5, 2.5]
    assert df["obs2"].tolist() == ["test_1", "test_2"]
    assert df["time"].iloc[0] == pd.Timestamp("2015-07-03T07:40:00Z")


def test_config_file_without_section_as_tcup_writes_it(server, tmp_path) -> None:
    key = server.new_key()
    config = tmp_path / "ConfigFile.conf"
    config.write_text(f"URL={server.url}\napi_key={key}\n")
    with pyconnector.connectors(str(config)) as conn:
        assert conn.SensorObservation().getCount() == {
            "sensors": 0, "features": 0, "observedProperties": 0}

"""One time rendering per output, on every SOS output path, against a real platform:
TCUP format in JSON, ISO 8601 with Z in tables and CSV (milliseconds only when there are
some), tz-aware UTC timestamps in DataFrames."""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

TCUP = re.compile(r"^\d{2}-[A-Z]{3}-\d{4} \d{2}:\d{2}:\d{2}\.\d{3} UTC$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
WHOLE, PART = 1435909200000, 1435909260250  # 07:40:00 and 07:41:00.250 on 3 July 2015


@pytest.fixture(scope="module")
def sos(server):
    with server.connector() as conn:
        sos = conn.SensorObservation()
        sos.createFeature("f")
        sos.createSensor("s", "f", outputs=["v"])
        sos.insertObservation([sos.data("s", {"v": v}, "f", time=t)["observations"][0]
                               for v, t in ((1, WHOLE), (2, PART))])
        yield sos


def test_observations_json_is_tcup_and_tabular_types_are_iso(sos, tmp_path) -> None:
    records = sos.getObservation(sensor="s")["observations"][0]["record"]
    assert [r["starttime"] for r in records] == ["03-JUL-2015 07:40:00.000 UTC",
                                                 "03-JUL-2015 07:41:00.250 UTC"]
    iso = ["2015-07-03T07:40:00Z", "2015-07-03T07:41:00.250Z"]
    frame = sos.getObservation(sensor="s", responseType="dataframe")
    assert str(frame["time"].dtype) == "datetime64[ms, UTC]"
    assert frame["time"].tolist() == [pd.Timestamp(t) for t in iso]
    text = sos.getObservation(sensor="s", responseType="csv")
    assert [row["time"] for row in csv.DictReader(io.StringIO(text))] == iso
    table = sos.getObservation(sensor="s", responseType="table")
    assert all(re.search(rf"\|\s+{re.escape(t)}\s+\|", table) for t in iso), table
    down = sos.downloadObservation(tmp_path / "out.csv", sensor="s")
    assert [row["time"] for row in csv.DictReader(io.StringIO(down.read_text()))] == iso


def test_feature_and_sensor_times(sos) -> None:
    for one, many in ((sos.getFeature("f"), sos.getFeatures()),
                      (sos.getSensor("s"), sos.getSensors())):
        assert TCUP.match(one["created"]) and TCUP.match(one["updated"]), one
        assert [x["created"] for x in many] == [one["created"]]
    for get, name in ((sos.getFeature, "f"), (sos.getSensor, "s")):
        frame = get(name, responseType="dataframe")
        assert str(frame["created"].dtype) == "datetime64[ms, UTC]"
        assert frame["created"].iloc[0].tzinfo is not None
        row = next(csv.DictReader(io.StringIO(get(name, responseType="csv"))))
        assert ISO.match(row["created"]) and ISO.match(row["updated"]), row
        assert pd.Timestamp(row["created"]) == frame["created"].iloc[0]
        table = get(name, responseType="table")
        assert re.search(r"\|\s+\d{4}-\d{2}-\d{2}T[\d:.]+Z\s+\|", table), table
    listed = sos.getSensors(responseType="dataframe")
    assert str(listed["updated"].dtype) == "datetime64[ms, UTC]"
    assert str(sos.getFeatures(responseType="dataframe")["created"].dtype) == \
        "datetime64[ms, UTC]"


def test_json_time_formats_on_request(sos, server) -> None:
    import httpx

    got = httpx.get(f"{server.url}/api/sos/v2.0/observations",
                    params={"sensor": "s", "timeFormat": "iso"},
                    headers={"x-api-key": sos.http.config.api_key}).json()
    assert [r["starttime"] for r in got["observations"][0]["record"]] == [
        "2015-07-03T07:40:00Z", "2015-07-03T07:41:00.250Z"]

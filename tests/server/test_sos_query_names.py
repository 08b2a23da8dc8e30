"""User names never collide with the query builder's own names.

Values are lined up internally on (sensor, time) keys. A property called like one of
those keys once replaced the sensor column (``s``: rows of q2 were filed under q1) or
broke every query (``t``: 500). Every name the query path uses, and SQL words, are tried
as property names on both stores, through JSON, CSV and Arrow.
"""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pytest

from tests.conftest import AppClient

SOS = "/api/sos/v2.0"
# Internal column names (s, t, v0…), SQL labels and words, and result columns' lookalikes.
NAMES = ["s", "t", "v", "v0", "v1", "p0", "value", "select", "from", "where", "order",
         "group", "key", "num", "text", "time_ms", "sensor_id", "property_id", "S", "T",
         "s t", "*", "\"s\"", "id", "index"]


@pytest.fixture
def two_sensors(api_any: AppClient) -> AppClient:
    api = api_any
    assert api.post(f"{SOS}/features", json={"name": "f"}).json()["code"] == 201
    for s in ("q1", "q2"):
        r = api.post(f"{SOS}/sensors", json={"name": s, "feature": "f",
                                             "outputs": [{"name": n} for n in NAMES]})
        assert r.json()["code"] == 201, r.text
    obs = [{"sensor": s, "record": [{"starttime": 1_700_000_000_000 + k * 1000, "output": [
        {"name": n, "value": i * 100 + k + j / 1000} for j, n in enumerate(NAMES)]}
        for k in range(3)]} for i, s in enumerate(("q1", "q2"))]
    r = api.post(f"{SOS}/observations", json={"observations": obs})
    assert r.json()["code"] == 201, r.text
    return api


def _expected(sensor: str, k: int, name: str) -> float:
    i = ("q1", "q2").index(sensor)
    return i * 100 + k + NAMES.index(name) / 1000


def test_json_files_each_record_under_its_sensor(two_sensors: AppClient) -> None:
    r = two_sensors.get(f"{SOS}/observations", params={"sensor": ["q1", "q2"],
                                                      "timeFormat": "epoch"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 6
    seen = 0
    for item in body["observations"]:
        for rec in item["record"]:
            k = (rec["starttime"] - 1_700_000_000_000) // 1000
            values = {o["name"]: o["value"] for o in rec["output"]}
            assert values == {n: pytest.approx(_expected(item["sensor"], k, n))
                              for n in NAMES}
            seen += 1
    assert seen == 6


def test_csv_and_arrow_keep_sensor_and_time_columns(two_sensors: AppClient) -> None:
    r = two_sensors.get(f"{SOS}/observations", params={"sensor": ["q1", "q2"],
                                                      "format": "csv"})
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(row["sensor"] for row in rows) == ["q1"] * 3 + ["q2"] * 3
    for row in rows:
        assert float(row["s"]) == pytest.approx(_expected(row["sensor"], 0, "s"), abs=3)
        assert float(row["t"]) // 100 == ("q1", "q2").index(row["sensor"])

    r = two_sensors.get(f"{SOS}/observations", params={"sensor": ["q1", "q2"],
                                                      "format": "arrow"})
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.column_names[:3] == ["time", "sensor", "feature"]
    assert table.column_names[3:] == sorted(NAMES)
    by_sensor = table.group_by("sensor").aggregate([("t", "min")]).to_pydict()
    assert dict(zip(by_sensor["sensor"], by_sensor["t_min"])) == {
        "q1": pytest.approx(_expected("q1", 0, "t")), "q2": pytest.approx(_expected("q2", 0, "t"))}


@pytest.mark.parametrize("name", ["s", "t", "v0", "select"])
def test_filters_and_property_selection_on_colliding_names(two_sensors: AppClient,
                                                           name: str) -> None:
    r = two_sensors.get(f"{SOS}/observations", params={
        "sensor": ["q1", "q2"], "property": [name, "value"], "filter": f"{name}>=100",
        "timeFormat": "epoch"})
    assert r.status_code == 200, r.text
    items = r.json()["observations"]
    assert [i["sensor"] for i in items] == ["q2"]
    assert [sorted(o["name"] for o in rec["output"]) for rec in items[0]["record"]] == \
        [sorted([name, "value"])] * 3


def test_uneven_series_still_align_by_sensor(two_sensors: AppClient) -> None:
    # q1 alone reports `s` at a fourth time: the series differ, so they are joined.
    r = two_sensors.post(f"{SOS}/observations", json={"observations": [
        {"sensor": "q1", "record": [{"starttime": 1_700_000_009_000,
                                     "output": [{"name": "s", "value": -1}]}]}]})
    assert r.json()["code"] == 201
    r = two_sensors.get(f"{SOS}/observations", params={
        "sensor": ["q1", "q2"], "property": ["s", "t"], "timeFormat": "epoch"})
    recs = [(i["sensor"], rec["starttime"], {o["name"]: o["value"] for o in rec["output"]})
            for i in r.json()["observations"] for rec in i["record"]]
    assert len(recs) == 7
    assert ("q1", 1_700_000_009_000, {"s": -1.0}) in recs
    assert all(vals["t"] // 100 == ("q1", "q2").index(s) for s, _, vals in recs if "t" in vals)

"""Every SOS connector method against a real `pyconnector serve` process."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

import pyconnector

pytestmark = pytest.mark.e2e


@pytest.fixture
def sos(server):
    with server.connector() as conn:
        yield conn.SensorObservation()


def test_features_create_read_update_delete(sos) -> None:
    assert sos.createFeatures([{"name": "site"}, {"name": "site"}])["code"] == 207
    sos.createFeature("hall", parent="site", metadata={"floor": 1},
                      location={"lat": 18.5, "lon": 73.8})
    hall = sos.getFeature("hall")
    assert (hall["parent"], hall["metadata"], hall["location"]) == (
        "site", {"floor": 1}, {"lat": 18.5, "lon": 73.8})
    assert [f["name"] for f in sos.getFeatures(parent="site")] == ["hall"]
    assert sos.getFeatures(responseType="dataframe")["name"].tolist() == ["hall", "site"]
    assert "| hall |" in sos.getFeature("hall", responseType="table").replace("  ", " ")
    sos.updateFeature("hall", description="main hall", parent=None)
    assert sos.getFeature("hall")["parent"] is None
    sos.createSensor("x", "site")
    with pytest.raises(pyconnector.ConflictError):
        sos.deleteFeature("site")  # it has a sensor
    assert sos.deleteFeature("site", cascade=True)["code"] == 200
    with pytest.raises(pyconnector.NotFoundError):
        sos.getFeature("site")


def test_sensors_and_observed_properties(sos) -> None:
    sos.createFeature("f")
    sos.createObservedProperty("temp", unit="Cel", description="air temperature")
    assert sos.getObservedProperty("temp")["unit"] == "Cel"
    sos.updateObservedProperty("temp", unit="K")
    assert sos.getObservedProperties(responseType="dataframe")["unit"].tolist() == ["K"]
    sos.createSensors([{"name": "t1", "feature": "f", "outputs": ["temp"]},
                       {"name": "t2", "feature": "f", "outputs": ["temp"]}])
    sos.createSensor("station", "f", type="composite", members=["t1", "t2"])
    assert sos.getSensor("station")["members"] == ["t1", "t2"]
    assert [s["name"] for s in sos.getSensors(feature="f")] == ["station", "t1", "t2"]
    sos.updateSensor("t1", description="north wall", outputs=[{"name": "hum"}])
    assert [o["name"] for o in sos.getSensor("t1")["outputs"]] == ["hum", "temp"]
    caps = sos.getCapabilities(responseType="dataframe")
    assert caps.set_index("sensor").loc["t1", "outputs"] == "hum, temp"
    with pytest.raises(pyconnector.ConflictError):
        sos.createObservedProperty("temp")
    sos.createObservedProperty("unused", type="text")
    assert sos.deleteObservedProperty("unused")["code"] == 200
    assert sos.deleteSensor("t2")["code"] == 200
    assert sos.getCount()["sensors"] == 2


def test_observations_paging_filters_and_deletes(sos, tmp_path) -> None:
    sos.createFeature("f")
    sos.createSensor("s", "f")
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    body = [sos.data("s", {"v": i, "label": f"n{i}"}, "f", time=1714521600000 + i * 60_000)
            ["observations"][0] for i in range(25)]
    answer = sos.insertObservation(body)
    assert answer["code"] == 201 and len(answer["results"]) == 25
    items = list(sos.iterObservation(sensor="s", pageSize=10))
    assert sum(len(i["record"]) for i in items) == 25
    page = sos.getObservation(sensor="s", start=start, limit=5, order="desc")
    assert page["count"] == 5 and page["next"]
    first = page["observations"][0]["record"][0]
    assert {o["name"]: o["value"] for o in first["output"]} == {"label": "n24", "v": 24.0}
    df = sos.getObservation(sensor=["s"], filter=["v>=10", "v<12"], properties="v",
                            responseType="dataframe")
    assert list(df.columns) == ["time", "sensor", "feature", "v"]
    assert df["v"].tolist() == [10.0, 11.0]
    csv = sos.getObservation(sensor="s", latest=2, responseType="csv")
    assert csv.splitlines()[0] == "time,sensor,feature,label,v" and len(csv.splitlines()) == 3
    deleted = sos.deleteObservation(sensor="s", end=start + pd.Timedelta(minutes=20))
    assert deleted["deleted"] == 40  # 20 records × 2 values
    assert len(sos.getObservation(sensor="s", responseType="dataframe")) == 5
    with pytest.raises(pyconnector.BadRequestError) as err:
        sos.deleteObservation()
    assert err.value.field == "sensor"


def test_routing_intent_is_accepted(sos) -> None:
    sos.createFeature("f")
    sos.createSensor("s", "f")
    for routing in ("mq", "both"):
        assert sos.insertObservation(sos.data("s", {"v": 1}, "f", time=1000),
                                     routing=routing)["code"] == 201
    # mq alone stores nothing; both stores the value.
    assert sos.getObservation(sensor="s", responseType="dataframe")["v"].tolist() == [1.0]
    with pytest.raises(pyconnector.BadRequestError):
        sos.insertObservation(sos.data("s", {"v": 1}, "f"), routing="kafka")

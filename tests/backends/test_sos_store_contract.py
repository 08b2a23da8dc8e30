"""One contract for the SOS store, run against every database it supports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from pyconnector_server.auth import Tenant, ensure_tenant
from pyconnector_server.db import Database
from pyconnector_server.errors import APIError
from pyconnector_server.settings import Settings
from pyconnector_server.sos import SosStore
from pyconnector_server.sos.bodies import FeatureIn, FeatureUpdate, PropertyUpdate, SensorIn
from pyconnector_server.sos.ingest import insert_observations
from pyconnector_server.sos.params import Filter, ObservationQuery, decode_cursor
from pyconnector_server.sos.query import run, to_tcup_json


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[tuple[SosStore, Tenant]]:
    settings = Settings.load({"data_dir": str(tmp_path), "db": db_url}, environ={})
    db = Database(settings.database_url)
    db.migrate()
    tenant = ensure_tenant(db, f"t-{uuid.uuid4().hex[:8]}")
    yield SosStore(db), tenant
    db.close()


def _setup(s: SosStore, t: Tenant, sensors: tuple[str, ...] = ("s1",)) -> None:
    s.create_feature(t, FeatureIn.model_validate({"name": "f1"}))
    for name in sensors:
        s.create_sensor(t, SensorIn.model_validate({"name": name, "feature": "f1", "outputs": [
            {"name": "temp", "type": "quantity"}, {"name": "n", "type": "count"},
            {"name": "status", "type": "text"}]}))


def _insert(s: SosStore, t: Tenant, sensor: str, records: list[tuple[int, dict]]) -> dict:
    body = {"observations": [{"sensor": sensor, "record": [
        {"starttime": ms, "output": [{"name": k, "value": v} for k, v in out.items()]}
        for ms, out in records]}]}
    return insert_observations(s, t, body, "db")


def _frame(s: SosStore, t: Tenant, **kw) -> pa.Table:
    return run(s, t, ObservationQuery(**kw)).table


def test_values_round_trip_with_their_types(store) -> None:
    s, t = store
    _setup(s, t)
    assert _insert(s, t, "s1", [(1000, {"temp": 1.5, "n": 3, "status": "ok"}),
                                (2000, {"temp": -2, "n": 4, "status": "née 'x'"})])["code"] == 201
    table = _frame(s, t, sensors=["s1"])
    assert table.column_names == ["time", "sensor", "feature", "n", "status", "temp"]
    assert table["time"].type == pa.timestamp("ms", tz="UTC")
    assert table["temp"].to_pylist() == [1.5, -2.0]
    assert table["n"].type == pa.int64() and table["n"].to_pylist() == [3, 4]
    assert table["status"].to_pylist() == ["ok", "née 'x'"]
    assert table["feature"].to_pylist() == ["f1", "f1"]


def test_a_retried_write_replaces_instead_of_duplicating(store) -> None:
    s, t = store
    _setup(s, t)
    for value in (1.0, 1.0, 7.0):
        _insert(s, t, "s1", [(1000, {"temp": value})])
    assert _frame(s, t, sensors=["s1"])["temp"].to_pylist() == [7.0]


def test_bulk_table_write_upserts_too(store) -> None:
    s, t = store
    _setup(s, t)
    sid = s.sensor_refs(t, ["s1"])[0].id
    with s.db.read() as conn:
        pid = s.properties(conn, t)["temp"].id

    def table(values: list[float]) -> pa.Table:
        n = len(values)
        return pa.table({"sensor_id": [sid] * n, "property_id": [pid] * n,
                         "time_ms": list(range(0, n * 1000, 1000)), "num": values,
                         "text": pa.nulls(n, pa.string())})

    with s.db.write() as conn:
        s.write_table(conn, table([1.0, 2.0, 3.0]))
    with s.db.write() as conn:
        s.write_table(conn, table([9.0, 8.0]))
    assert _frame(s, t, sensors=["s1"])["temp"].to_pylist() == [9.0, 8.0, 3.0]


def test_duplicate_keys_in_one_bulk_write_keep_the_last(store) -> None:
    s, t = store
    _setup(s, t)
    sid = s.sensor_refs(t, ["s1"])[0].id
    with s.db.read() as conn:
        pid = s.properties(conn, t)["temp"].id
    n = 2000
    table = pa.table({"sensor_id": [sid] * n, "property_id": [pid] * n,
                      "time_ms": [i % 10 * 1000 for i in range(n)],
                      "num": [float(i) for i in range(n)], "text": pa.nulls(n, pa.string())})
    with s.db.write() as conn:
        s.write_table(conn, table)
    assert _frame(s, t, sensors=["s1"])["temp"].to_pylist() == [float(n - 10 + i)
                                                                 for i in range(10)]


def test_records_with_missing_properties_line_up(store) -> None:
    s, t = store
    _setup(s, t)
    _insert(s, t, "s1", [(1000, {"temp": 1.0}), (2000, {"status": "a"}),
                         (3000, {"temp": 3.0, "status": "c"})])
    table = _frame(s, t, sensors=["s1"], properties=["temp", "status"])
    assert table.column_names == ["time", "sensor", "feature", "temp", "status"]
    assert table["temp"].to_pylist() == [1.0, None, 3.0]
    assert table["status"].to_pylist() == [None, "a", "c"]


def test_order_latest_and_time_span(store) -> None:
    s, t = store
    _setup(s, t, ("s1", "s2"))
    for sensor, base in (("s1", 0.0), ("s2", 100.0)):
        _insert(s, t, sensor, [(ms, {"temp": base + ms / 1000}) for ms in range(1000, 6000, 1000)])
    both = _frame(s, t, feature="f1")
    assert both["sensor"].to_pylist()[:4] == ["s1", "s2", "s1", "s2"]
    desc = _frame(s, t, sensors=["s1"], order="desc")
    assert desc["temp"].to_pylist() == [5.0, 4.0, 3.0, 2.0, 1.0]
    latest = _frame(s, t, sensors=["s1"], latest=2)
    assert latest["temp"].to_pylist() == [4.0, 5.0]
    span = _frame(s, t, sensors=["s2"], start=2000, end=4000)
    assert span["temp"].to_pylist() == [102.0, 103.0]


def test_filters_keep_only_passing_records(store) -> None:
    s, t = store
    _setup(s, t)
    _insert(s, t, "s1", [(ms, {"temp": ms / 1000, "status": "hot" if ms > 3000 else "ok"})
                         for ms in range(1000, 6000, 1000)])
    hot = _frame(s, t, sensors=["s1"], filters=[Filter("temp", ">", "2")])
    assert hot["temp"].to_pylist() == [3.0, 4.0, 5.0]
    ok = _frame(s, t, sensors=["s1"], filters=[Filter("status", "=", "ok"),
                                               Filter("temp", ">=", "2")])
    assert ok["temp"].to_pylist() == [2.0, 3.0]
    with pytest.raises(APIError) as err:
        _frame(s, t, sensors=["s1"], filters=[Filter("temp", ">", "warm")])
    assert err.value.status == 400


def test_cursor_pages_cover_everything_once(store) -> None:
    s, t = store
    _setup(s, t, ("s1", "s2"))
    for sensor in ("s1", "s2"):
        _insert(s, t, sensor, [(ms, {"temp": ms}) for ms in range(0, 25_000, 1000)])
    seen, cursor = [], None
    while True:
        result = run(s, t, ObservationQuery(feature="f1", limit=7, cursor=cursor))
        page = result.table
        seen += list(zip(page["time"].cast(pa.int64()).to_pylist(), page["sensor"].to_pylist()))
        if result.next_cursor is None:
            break
        cursor = decode_cursor(result.next_cursor)
    full = _frame(s, t, feature="f1")
    assert seen == list(zip(full["time"].cast(pa.int64()).to_pylist(),
                            full["sensor"].to_pylist()))
    assert len(seen) == 50


def test_tcup_json_groups_runs_of_a_sensor(store) -> None:
    s, t = store
    _setup(s, t)
    _insert(s, t, "s1", [(1435909200000, {"temp": 23.5, "status": "ok"})])
    body = to_tcup_json(run(s, t, ObservationQuery(sensors=["s1"])))
    assert body["observations"] == [{"sensor": "s1", "feature": "f1", "record": [
        {"starttime": "03-JUL-2015 07:40:00.000 UTC",
         "output": [{"name": "status", "value": "ok"}, {"name": "temp", "value": 23.5}]}]}]


def test_delete_sensor_takes_its_observations(store) -> None:
    s, t = store
    _setup(s, t)
    _insert(s, t, "s1", [(1000, {"temp": 1.0})])
    s.delete_sensor(t, "s1")
    assert s.create_sensor(t, SensorIn(name="s1", feature="f1"))["code"] == 201
    assert _frame(s, t, sensors=["s1"]).num_rows == 0


def test_feature_delete_refuses_then_cascades(store) -> None:
    s, t = store
    _setup(s, t)
    s.create_feature(t, FeatureIn.model_validate({"name": "child", "parent": "f1"}))
    with pytest.raises(APIError) as err:
        s.delete_feature(t, "f1")
    assert err.value.status == 409
    s.delete_feature(t, "f1", cascade=True)
    assert s.list_features(t) == []
    assert s.count(t) == {"sensors": 0, "features": 0, "observedProperties": 3}


def test_feature_parent_cannot_make_a_cycle(store) -> None:
    s, t = store
    s.create_feature(t, FeatureIn.model_validate({"name": "a"}))
    s.create_feature(t, FeatureIn.model_validate({"name": "b", "parent": "a"}))
    s.create_feature(t, FeatureIn.model_validate({"name": "c", "parent": "b"}))
    with pytest.raises(APIError) as err:
        s.update_feature(t, "a", FeatureUpdate.model_validate({"parent": "c"}))
    assert err.value.status == 400
    assert s.get_feature(t, "a")["parent"] is None
    s.update_feature(t, "c", FeatureUpdate.model_validate({"parent": None}))
    assert s.get_feature(t, "c")["parent"] is None


def test_composite_sensor_keeps_its_members(store) -> None:
    s, t = store
    _setup(s, t, ("thermo", "hygro"))
    s.create_sensor(t, SensorIn(name="station", feature="f1", type="composite",
                                members=["thermo", "hygro"]))
    assert s.get_sensor(t, "station")["members"] == ["hygro", "thermo"]
    with pytest.raises(APIError):
        s.create_sensor(t, SensorIn(name="x", feature="f1", members=["thermo"]))


def test_property_type_is_fixed_once_it_has_values(store) -> None:
    s, t = store
    _setup(s, t)
    _insert(s, t, "s1", [(1000, {"temp": 1.0})])
    with pytest.raises(APIError) as err:
        s.update_property(t, "temp", PropertyUpdate.model_validate({"type": "text"}))
    assert err.value.status == 409
    with pytest.raises(APIError) as err:
        s.delete_property(t, "temp")
    assert err.value.status == 409
    s.update_property(t, "status", PropertyUpdate.model_validate({"type": "count", "unit": "n"}))
    assert s.get_property(t, "status")["type"] == "count"

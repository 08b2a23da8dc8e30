"""CSV and Arrow observation answers are read and sent in slices of time: put end to
end, the slices are exactly the answer read whole, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pytest

from pyconnector_server.auth import tenant_for_key
from pyconnector_server.sos import csvio, query
from pyconnector_server.sos.params import ObservationQuery

SOS = "/api/sos/v2.0"
ARROW = "application/vnd.apache.arrow.stream"
T0 = 1_700_000_000_000


def _fill(api) -> None:
    """Three sensors that report unevenly: s1 every second, s2 every 3 s with gaps and
    only some outputs, s3 a burst of records 1 ms apart; a count and a text property."""
    assert api.post(f"{SOS}/features", json={"name": "plant"}).json()["code"] == 201
    outputs = [{"name": "temperature"}, {"name": "level", "type": "count"},
               {"name": "status", "type": "text"}]
    for s in ("s1", "s2", "s3"):
        r = api.post(f"{SOS}/sensors", json={"name": s, "feature": "plant", "outputs": outputs})
        assert r.json()["code"] == 201
    items = []
    for i in range(120):
        items.append({"sensor": "s1", "feature": "plant", "record": [{
            "starttime": T0 + i * 1000, "output": [
                {"name": "temperature", "value": 20 + i / 10}, {"name": "level", "value": i},
                {"name": "status", "value": "ok" if i % 7 else "warn, check"}]}]})
        if i % 3 == 0 and not 40 <= i < 70:
            out = [{"name": "temperature", "value": -i}]
            if i % 2:
                out.append({"name": "status", "value": f"s2 {i}"})
            items.append({"sensor": "s2", "feature": "plant",
                          "record": [{"starttime": T0 + i * 1000, "output": out}]})
    for i in range(50):
        items.append({"sensor": "s3", "feature": "plant", "record": [{
            "starttime": T0 + 30_000 + i, "output": [{"name": "level", "value": 1000 + i}]}]})
    r = api.post(f"{SOS}/observations", json={"observations": items})
    assert r.json()["code"] == 201, r.json()


QUERIES = [
    {"feature": "plant"},
    {"feature": "plant", "order": "desc"},
    {"sensor": ["s2", "s3"]},
    {"feature": "plant", "start": str(T0 + 10_500), "end": str(T0 + 95_000)},
    {"feature": "plant", "order": "desc", "start": str(T0 + 29_000), "end": str(T0 + 31_000)},
    {"feature": "plant", "property": ["status", "level"]},
    {"feature": "plant", "filter": "temperature>25"},
    {"feature": "plant", "filter": "status='ok'", "order": "desc"},
    {"feature": "plant", "latest": "17"},
    {"sensor": ["s3"], "start": str(T0 + 200_000)},  # nothing: the header alone
]


def _rows(content: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert rows and rows[0][:3] == ["time", "sensor", "feature"]
    return rows


def _whole(api, params: dict) -> pa.Table:
    """The answer read whole, as before slices: query.run's table."""
    from starlette.datastructures import QueryParams

    store = api.app.state.sos
    t = tenant_for_key(api.app.state.db, api.api_key)
    pairs = [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])]
    q = ObservationQuery.from_params(QueryParams(pairs), None, None)
    return query.run(store, t, q)


@pytest.mark.parametrize("params", QUERIES)
def test_sliced_answers_equal_the_whole_answer(make_app, db_url, params) -> None:
    api = make_app(db_url, sos_slice_rows=5)  # 5 values of a property a slice: many slices
    _fill(api)
    whole = _whole(api, params)
    r = api.get(f"{SOS}/observations", params=params, headers={"accept": ARROW})
    assert r.status_code == 200, r.text
    reader = pa.ipc.open_stream(r.content)
    batches = list(reader)
    got = pa.Table.from_batches(batches, reader.schema)
    assert got.schema == whole.table.schema
    assert got.equals(whole.table), (got.to_pylist()[:5], whole.table.to_pylist()[:5])
    if whole.table.num_rows > 20 and "latest" not in params:
        assert len(batches) > 1  # it was sliced
    r = api.get(f"{SOS}/observations", params={**params, "format": "csv"})
    assert r.status_code == 200, r.text
    # The same records in the same order; quotes come per chunk of lines, as before (a
    # chunk with a comma in a value is quoted), so compare the values, not the bytes.
    assert _rows(r.content) == _rows(b"".join(csvio.write_csv(whole)))


def test_a_burst_of_one_sensor_makes_small_slices(make_app) -> None:
    """Each slice holds at most about its share of values of each (sensor, property)."""
    api = make_app(sos_slice_rows=6)
    _fill(api)
    store = api.app.state.sos
    t = tenant_for_key(api.app.state.db, api.api_key)
    for order in ("asc", "desc"):
        q = ObservationQuery(feature="plant", order=order)
        answer = query.sliced(store, t, q, 6)
        sizes = []
        for table in answer.slices:
            per_sensor = {}
            for s in table["sensor"].to_pylist():
                per_sensor[s] = per_sensor.get(s, 0) + 1
            sizes.append(max(per_sensor.values(), default=0))
        # A share is rows // 3 sensors, but at least min(rows, 1024) (no tiny slices).
        assert max(sizes) <= 6, sizes
        assert len(sizes) >= 120 // 6  # s1's 120 records, 6 a slice

"""SOS bad input: every rejected write answers a clear 4xx naming the field (and the CSV
line), and stores nothing. Also: awkward but valid names round-trip unchanged."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sos_helper import stored_values as _stored

from pyconnector_server.auth import tenant_for_key
from pyconnector_server.sos import csvio
from pyconnector_server.sos.tables import observed_property

SOS = "/api/sos/v2.0"
DB_KINDS = ["sqlite", "postgresql"]
CSV = {"content-type": "text/csv"}
IST_0710 = 1435909200000  # 03-JUL-2015 13:10:00 IST = 2015-07-03T07:40:00Z


# -- helpers -------------------------------------------------------------------------------
def _ok(r: Any, code: int = 201) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == code, body
    return body


def _seed(api: Any) -> None:
    """tf1 ⟵ ts1 (temp: quantity, status: text), tf2 ⟵ ts2 (temp)."""
    for f in ("tf1", "tf2"):
        _ok(api.post(f"{SOS}/features", json={"name": f}))
    _ok(api.post(f"{SOS}/sensors", json={"name": "ts1", "feature": "tf1", "outputs": [
        {"name": "temp", "type": "quantity"}, {"name": "status", "type": "text"}]}))
    _ok(api.post(f"{SOS}/sensors", json={"name": "ts2", "feature": "tf2", "outputs": ["temp"]}))


def _property_names(api: Any) -> set[str]:
    db = api.app.state.db
    t = tenant_for_key(db, api.api_key)
    with db.read() as conn:
        return set(conn.execute(sa.select(observed_property.c.name).where(
            observed_property.c.tenant_id == t.id)).scalars())


def _records(api: Any, sensor_name: str = "ts1", **params: Any) -> list[dict[str, Any]]:
    r = api.get(f"{SOS}/observations", params={"sensor": sensor_name, "timeFormat": "epoch",
                                               **params})
    assert r.status_code == 200, r.text
    return [rec for item in r.json()["observations"] for rec in item["record"]]


def _rejected(r: Any, field: str | None, code: int = 400) -> dict[str, Any]:
    """A TCUP write answered HTTP 200 with ``code`` in the body, blaming ``field``."""
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    if field is None:
        assert "field" not in body, body
    else:
        assert body.get("field") == field, body
        assert field in body["message"] or field.rsplit(".", 1)[-1] in body["message"], body
    return body


def _obs(record: Any = None, **item: Any) -> dict[str, Any]:
    if record is None:
        record = [{"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "temp",
                                                                     "value": 21.5}]}]
    return {"observations": [{"sensor": "ts1", "feature": "tf1", "record": record, **item}]}


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _upload(api: Any, text: str | bytes) -> Any:
    return api.post(f"{SOS}/observations/csv", content=text, headers=CSV)


@pytest.fixture(scope="module", params=DB_KINDS)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           app_opener: Any) -> Iterator[Any]:
    """One seeded app per store for the whole module. Most tests here assert that a
    rejected write leaves everything unchanged, so they can share it (and stay fast)."""
    db = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with app_opener(tmp_path_factory.mktemp("bad-input"), db) as api:
        _seed(api)
        yield api


@pytest.fixture
def sos(shared: Any) -> Iterator[Any]:
    """The shared seeded app; observations a test stores are deleted after it."""
    yield shared
    for f in ("tf1", "tf2"):
        assert shared.delete(f"{SOS}/observations", params={"feature": f}).status_code == 200


@pytest.fixture
def fresh(api_any: Any) -> Any:
    """A seeded app of its own, on each store, for tests that store and change things."""
    _seed(api_any)
    return api_any


# -- 1. malformed bodies and wrong-typed fields ---------------------------------------------
@pytest.mark.parametrize("raw, fragment", [
    (b'{"observations": [', "malformed JSON"),
    (b"{'observations': []}", "malformed JSON"),
    (b"not json at all", "malformed JSON"),
    (b"", "empty"),
    (b"   \n", "empty"),
])
def test_malformed_or_empty_json_is_400(sos: Any, raw: bytes, fragment: str) -> None:
    for path in ("observations", "features", "sensors", "observedProperties"):
        r = sos.post(f"{SOS}/{path}", content=raw,
                     headers={"content-type": "application/json"})
        body = _rejected(r, None)
        assert fragment in body["message"], body
    r = sos.put(f"{SOS}/features/tf1", content=raw, headers={"content-type": "application/json"})
    assert fragment in _rejected(r, None)["message"]
    assert _stored(sos) == 0
    assert sos.get(f"{SOS}/count").json() == {"sensors": 2, "features": 2,
                                              "observedProperties": 2}


GOOD_RECORD = {"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "temp", "value": 1}]}
OBSERVATION_CASES = [
    ([], "body"),
    ("text", "body"),
    ({}, "observations"),
    ({"observations": None}, "observations"),
    ({"observations": "ts1"}, "observations"),
    ({"observations": {"sensor": "ts1"}}, "observations"),
    ({"observations": []}, "observations"),
    ({"observations": [42]}, "observations[0]"),
    ({"observations": [{"record": [GOOD_RECORD]}]}, "observations[0].sensor"),
    ({"observations": [{"sensor": 5, "record": [GOOD_RECORD]}]}, "observations[0].sensor"),
    ({"observations": [{"sensor": {"name": "ts1"}, "record": [GOOD_RECORD]}]},
     "observations[0].sensor"),
    ({"observations": [{"sensor": ["ts1"], "record": [GOOD_RECORD]}]},
     "observations[0].sensor"),
    ({"observations": [{"sensor": "", "record": [GOOD_RECORD]}]}, "observations[0].sensor"),
    (_obs(feature=7), "observations[0].feature"),
    (_obs(feature=["tf1"]), "observations[0].feature"),
    ({"observations": [{"sensor": "ts1"}]}, "observations[0].record"),
    (_obs(record={"starttime": "2024-05-01T10:00:00Z"}), "observations[0].record"),
    (_obs(record=[]), "observations[0].record"),
    (_obs(record=["2024-05-01T10:00:00Z"]), "observations[0].record[0]"),
    (_obs(record=[{"output": [{"name": "temp", "value": 1}]}]),
     "observations[0].record[0].starttime"),
    (_obs(record=[{"starttime": None, "output": [{"name": "temp", "value": 1}]}]),
     "observations[0].record[0].starttime"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z"}]), "observations[0].record[0].output"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z", "output": {"temp": 1}}]),
     "observations[0].record[0].output"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z", "output": ["temp"]}]),
     "observations[0].record[0].output[0]"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z", "output": [{"value": 1}]}]),
     "observations[0].record[0].output[0].name"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z", "output": [{"name": 5, "value": 1}]}]),
     "observations[0].record[0].output[0].name"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "", "value": 1}]}]),
     "observations[0].record[0].output[0].name"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                   "output": [{"name": "sensor", "value": 1}]}]),
     "observations[0].record[0].output[0].name"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "temp"}]}]),
     "observations[0].record[0].output[0].value"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                   "output": [{"name": "temp", "value": None}]}]),
     "observations[0].record[0].output[0].value"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                   "output": [{"name": "temp", "value": {"v": 1}}]}]),
     "observations[0].record[0].output[0].value"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                   "output": [{"name": "temp", "value": [1, 2]}]}]),
     "observations[0].record[0].output[0].value"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                   "output": [{"name": "temp", "value": "warm"}]}]),
     "observations[0].record[0].output[0].value"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                   "output": [{"name": "temp", "value": True}]}]),
     "observations[0].record[0].output[0].value"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                   "output": [{"name": "newprop", "value": {"a": 1}}]}]),
     "observations[0].record[0].output[0].value"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                   "output": [{"name": "newprop", "value": None}]}]),
     "observations[0].record[0].output[0].value"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z", "endtime": "2024-05-01T09:00:00Z",
                   "output": [{"name": "temp", "value": 1}]}]),
     "observations[0].record[0].endtime"),
    (_obs(record=[{"starttime": "2024-05-01T10:00:00Z", "endtime": "soon",
                   "output": [{"name": "temp", "value": 1}]}]),
     "observations[0].record[0].endtime"),
    # A bad field after good ones: the whole item is rejected, not just the bad part.
    (_obs(record=[GOOD_RECORD, {"starttime": "2024-05-01T11:00:00Z",
                                "output": [{"name": "temp", "value": 2},
                                           {"name": "status", "value": None}]}]),
     "observations[0].record[1].output[1].value"),
    (_obs(record=[GOOD_RECORD, {"starttime": "bad", "output": [{"name": "temp", "value": 2}]}]),
     "observations[0].record[1].starttime"),
]


@pytest.mark.parametrize("body, field", OBSERVATION_CASES,
                         ids=[c[1] + f"-{i}" for i, c in enumerate(OBSERVATION_CASES)])
def test_bad_observation_body_is_400_naming_the_field(sos: Any, body: Any, field: str) -> None:
    before = _property_names(sos)
    r = sos.post(f"{SOS}/observations", content=json.dumps(body),
                 headers={"content-type": "application/json"})
    _rejected(r, field)
    assert _stored(sos) == 0
    assert _property_names(sos) == before  # no property registered by a rejected item
    assert _records(sos) == []


def test_batch_stores_the_good_items_and_nothing_of_the_bad(fresh: Any) -> None:
    body = {"observations": [
        {"sensor": "ts1", "record": [GOOD_RECORD]},
        {"sensor": "ts2", "record": [
            {"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "temp", "value": 5}]},
            {"starttime": "2024-05-01T11:00:00Z", "output": [{"name": "humidity", "value": {}}]},
        ]},
    ]}
    body_out = _ok(fresh.post(f"{SOS}/observations", json=body), 207)
    res = body_out["results"]
    assert [r["code"] for r in res] == [201, 400]
    assert res[1]["field"] == "observations[1].record[1].output[0].value"
    assert res[1]["index"] == 1
    assert _stored(fresh) == 1
    assert _records(fresh, "ts2") == []
    assert "humidity" not in _property_names(fresh)


def test_all_items_bad_answers_the_first_items_code(sos: Any) -> None:
    body = {"observations": [{"sensor": "nope", "record": [GOOD_RECORD]},
                             {"sensor": "ts1", "record": [{"starttime": "x", "output": []}]}]}
    out = sos.post(f"{SOS}/observations", json=body).json()
    assert out["code"] == 404 and out["field"] == "observations[0].sensor", out
    assert [r["code"] for r in out["results"]] == [404, 400]
    assert _stored(sos) == 0


def test_bad_routing_header_is_400(sos: Any) -> None:
    r = sos.post(f"{SOS}/observations", json=_obs(), headers={"x-routing": "carrier-pigeon"})
    _rejected(r, "x-routing")
    assert _stored(sos) == 0


METADATA_CASES = [
    ("features", {}, "feature.name"),
    ("features", {"name": 5}, "feature.name"),
    ("features", {"name": ""}, "feature.name"),
    ("features", {"name": "x" * 256}, "feature.name"),
    ("features", {"name": "a/b"}, "feature.name"),
    ("features", {"name": "a\nb"}, "feature.name"),
    ("features", {"name": "f", "description": 5}, "feature.description"),
    ("features", {"name": "f", "metadata": [1]}, "feature.metadata"),
    ("features", {"name": "f", "location": {"lat": 100, "lon": 0}}, "feature.location.lat"),
    ("features", {"name": "f", "location": {"lat": 1}}, "feature.location.lon"),
    ("features", {"name": "f", "location": "here"}, "feature.location"),
    ("features", {"name": "f", "parent": 3}, "feature.parent"),
    ("features", ["x"], "features[0]"),
    ("features", [], "features"),
    ("sensors", [{"name": "s"}], "sensors[0].feature"),
    ("sensors", {"name": "s"}, "sensor.feature"),
    ("sensors", {"name": "s", "feature": None}, "sensor.feature"),
    ("sensors", {"feature": "tf1"}, "sensor.name"),
    ("sensors", {"name": ["s"], "feature": "tf1"}, "sensor.name"),
    ("sensors", {"name": "s", "feature": "tf1", "type": "quantum"}, "sensor.type"),
    ("sensors", {"name": "s", "feature": "tf1", "outputs": "temp"}, "sensor.outputs"),
    ("sensors", {"name": "s", "feature": "tf1", "outputs": [{"name": 5}]},
     "sensor.outputs[0].name"),
    ("sensors", {"name": "s", "feature": "tf1", "outputs": [{"name": "p", "type": "blob"}]},
     "sensor.outputs[0].type"),
    ("sensors", {"name": "s", "feature": "tf1", "members": ["ts1"]}, "sensor.members"),
    ("sensors", {"name": "s", "feature": "tf1", "metadata": "m"}, "sensor.metadata"),
    ("observedProperties", {"name": "p", "type": "blob"}, "observedProperty.type"),
    ("observedProperties", {"name": "time"}, "observedProperty.name"),
    ("observedProperties", {"name": "Feature"}, "observedProperty.name"),
    ("observedProperties", {"name": "p", "unit": 3}, "observedProperty.unit"),
    ("observedProperties", {}, "observedProperty.name"),
]


@pytest.mark.parametrize("path, body, field", METADATA_CASES,
                         ids=[c[2] + f"-{i}" for i, c in enumerate(METADATA_CASES)])
def test_bad_metadata_body_is_400_naming_the_field(sos: Any, path: str, body: Any,
                                                   field: str) -> None:
    before = sos.get(f"{SOS}/count").json()
    _rejected(sos.post(f"{SOS}/{path}", json=body), field)
    assert sos.get(f"{SOS}/count").json() == before
    assert _property_names(sos) == {"temp", "status"}


@pytest.mark.parametrize("path, body, field, code", [
    ("features/tf1", [], "feature", 400),
    ("features/tf1", {"description": 5}, "feature.description", 400),
    ("features/tf1", {"parent": "nope"}, "feature.parent", 404),
    ("features/tf1", {"parent": "tf1"}, "feature.parent", 400),
    ("sensors/ts1", {"feature": "nope"}, "sensor.feature", 404),
    ("sensors/ts1", {"feature": 5}, "sensor.feature", 400),
    ("sensors/ts1", {"metadata": 5}, "sensor.metadata", 400),
    ("sensors/ts1", {"description": 1, "metadata": {"a": 1}}, "sensor.description", 400),
    ("observedProperties/temp", {"type": "blob"}, "observedProperty.type", 400),
    ("observedProperties/temp", {"unit": 5}, "observedProperty.unit", 400),
])
def test_bad_update_is_rejected_and_changes_nothing(sos: Any, path: str, body: Any,
                                                    field: str, code: int) -> None:
    before = sos.get(f"{SOS}/{path}").json()
    _rejected(sos.put(f"{SOS}/{path}", json=body), field, code)
    after = sos.get(f"{SOS}/{path}").json()
    assert after == before


def test_batch_create_reports_per_item(fresh: Any) -> None:
    out = _ok(fresh.post(f"{SOS}/features", json=[{"name": "a"}, {"name": 5}, {"name": "a"}]),
              207)
    assert [(r["code"], r.get("field")) for r in out["results"]] == [
        (201, None), (400, "features[1].name"), (409, "features[2].name")]
    names = [f["name"] for f in fresh.get(f"{SOS}/features").json()]
    assert names == ["a", "tf1", "tf2"]


# -- 2. unknown sensor or feature, wrong binding ----------------------------------------------
@pytest.mark.parametrize("item, field, code", [
    ({"sensor": "nope"}, "observations[0].sensor", 404),
    ({"sensor": "nope", "feature": "tf1"}, "observations[0].sensor", 404),
    ({"sensor": "ts1", "feature": "nope"}, "observations[0].feature", 400),
    ({"sensor": "ts1", "feature": "tf2"}, "observations[0].feature", 400),  # bound to tf1
    ({"sensor": "ts2", "feature": "tf1"}, "observations[0].feature", 400),
])
def test_unknown_or_mismatched_sensor_and_feature(sos: Any, item: dict[str, Any], field: str,
                                                  code: int) -> None:
    body = _rejected(sos.post(f"{SOS}/observations",
                              json={"observations": [{**item, "record": [GOOD_RECORD]}]}),
                     field, code)
    assert repr(item.get("feature") if "feature" in field else item["sensor"]) in body["message"]
    assert _stored(sos) == 0


# -- 3. times ------------------------------------------------------------------------------
BAD_TIMES: list[Any] = [
    "yesterday", "32-JAN-2015 10:00:00", "03-XYZ-2015 10:00:00", "03-JUL-2015 25:00:00",
    "03-JUL-2015 10:60:00", "29-FEB-2015 10:00:00", "03-JUL-2015 10:00:00 QQQ",
    "03-JUL-2015 10:00:00 +9999x", "2015-13-01T00:00:00Z", "2015-07-03T10:00:00+25:00",
    "", "   ", True, False, {}, [], {"time": 1}, 1e300, "1e300", "NaN",
]


@pytest.mark.parametrize("value", BAD_TIMES, ids=[repr(v) for v in BAD_TIMES])
def test_unparseable_time_is_400_naming_starttime(sos: Any, value: Any) -> None:
    record = [{"starttime": value, "output": [{"name": "temp", "value": 1}]}]
    body = _rejected(sos.post(f"{SOS}/observations", json=_obs(record=record)),
                     "observations[0].record[0].starttime")
    assert "time" in body["message"]
    assert _stored(sos) == 0


GOOD_TIMES: list[tuple[Any, int]] = [
    ("2015-07-03T13:10:00+05:30", IST_0710),
    ("2015-07-03T07:40:00Z", IST_0710),
    ("2015-07-03 07:40:00", IST_0710),  # no zone: UTC
    (IST_0710, IST_0710),
    (str(IST_0710), IST_0710),
    ("03-JUL-2015 13:10:00 IST", IST_0710),
    ("03-JUL-2015 07:40:00", IST_0710),
    ("03-JUL-2015 07:40:00 UTC", IST_0710),
    ("03-JUL-2015 13:10:00.123 IST", IST_0710 + 123),
    ("03-JUL-2015 13:10:00.5 IST", IST_0710 + 500),
    ("03-jul-2015 13:10:00 ist", IST_0710),
    ("03-Jul-2015 13:10:00 IST", IST_0710),
    ("03-JUL-2015 13:10:00 +0530", IST_0710),
    ("03-JUL-2015 13:10:00 +05:30", IST_0710),
    ("03-JUL-2015 02:40:00 -0500", IST_0710),
    ("03-07-2015 07:40:00", IST_0710),
]


@pytest.mark.parametrize("value, ms", GOOD_TIMES, ids=[repr(v) for v, _ in GOOD_TIMES])
@pytest.mark.parametrize("via", ["json", "csv"])
def test_accepted_time_forms_are_stored_in_utc(sos: Any, via: str, value: Any, ms: int) -> None:
    if via == "json":
        record = [{"starttime": value, "output": [{"name": "temp", "value": 1.5}]}]
        _ok(sos.post(f"{SOS}/observations", json=_obs(record=record)))
    else:
        _ok(_upload(sos, _csv([["time", "sensor", "temp"], [str(value), "ts1", "1.5"]])))
    assert _records(sos) == [{"starttime": ms, "output": [{"name": "temp", "value": 1.5}]}]


@pytest.mark.parametrize("param", ["start", "end"])
def test_unparseable_time_in_a_query_is_400(sos: Any, param: str) -> None:
    r = sos.get(f"{SOS}/observations", params={"sensor": "ts1", param: "yesterday"})
    assert r.status_code == 400
    assert r.json()["code"] == 400 and r.json()["field"] == param


@pytest.mark.parametrize("path, params, field", [
    ("features", {"limit": "-1"}, "limit"),
    ("features", {"offset": "-1"}, "offset"),
    ("features", {"limit": "9" * 20}, "limit"),
    ("sensors", {"limit": "-5"}, "limit"),
    ("sensors", {"offset": str(2**63)}, "offset"),
    ("sensors", {"limit": "abc"}, "limit"),
    ("observations", {"sensor": "ts1", "limit": "-1"}, "limit"),
    ("observations", {"sensor": "ts1", "limit": "9" * 20, "format": "csv"}, "limit"),
    ("observations", {"sensor": "ts1", "offset": "9" * 20}, "offset"),
    ("observations", {"sensor": "ts1", "latest": "9" * 20}, "latest"),
    ("observations", {"sensor": "ts1", "latest": "x"}, "latest"),
    # A cursor this server never issued, with times and ids beyond 64 bits.
    ("observations", {"sensor": "ts1", "cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5Ojk5OTk5OTk5OTk5"
                                                 "OTk5OTk5OTk5OTk"}, "cursor"),
    ("observations", {"sensor": "ts1", "filter": "temp>warm"}, "filter"),
    ("observations", {"sensor": "ts1", "property": "nope"}, "property"),
])
def test_bad_query_parameters_are_400_on_both_stores(sos: Any, path: str,
                                                     params: dict[str, str], field: str) -> None:
    r = sos.get(f"{SOS}/{path}", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == 400 and r.json()["field"] == field, r.json()


# -- 4. CSV -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, field", [
    ("sensor,temp\nts1,1\n", "time"),
    ("time,temp\n2024-05-01T10:00:00Z,1\n", "sensor"),
    ("time,sensor,temp,temp\n2024-05-01T10:00:00Z,ts1,1,2\n", "temp"),
    ("time,sensor,sensor,temp\n2024-05-01T10:00:00Z,ts1,ts1,2\n", "sensor"),
    ("time,sensor,a/b\n2024-05-01T10:00:00Z,ts1,1\n", "a/b"),
    ("time,sensor,Sensor\n2024-05-01T10:00:00Z,ts1,1\n", "Sensor"),
])
def test_csv_bad_header_is_rejected_on_line_1(sos: Any, text: str, field: str) -> None:
    body = _rejected(_upload(sos, text), field)
    assert body["line"] == 1
    assert _stored(sos) == 0


@pytest.mark.parametrize("text", [
    "time,sensor,feature\n2024-05-01T10:00:00Z,ts1,tf1\n",
    "time,sensor\n2024-05-01T10:00:00Z,ts1\n",
    "time,sensor,,temp\n2024-05-01T10:00:00Z,ts1,,1\n",
    "",
    "\n",
])
def test_csv_header_without_properties_is_rejected_on_line_1(sos: Any, text: str) -> None:
    r = _upload(sos, text)
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 400 and body["line"] == 1, body
    assert _stored(sos) == 0


GOOD_ROWS = [["2024-05-01T10:00:00Z", "ts1", "tf1", "20.5", "ok", "40"],
             ["03-JUL-2015 13:10:00 IST", "ts2", "", "19", "", "41"]]
HEADER = ["time", "sensor", "feature", "temp", "status", "humidity"]
BAD_ROWS = [
    (["2024-05-01T11:00:00Z", "ts1", "tf1", "20.5", "ok"], "humidity", 400),  # short row
    (["2024-05-01T11:00:00Z", "ts1"], "feature", 400),  # short row
    (["2024-05-01T11:00:00Z", "ts1", "tf1", "20.5", "ok", "40", "9"], None, 400),  # long row
    (["2024-05-01T11:00:00Z", "ts1", "tf1", "warm", "ok", "40"], "temp", 400),
    (["2024-05-01T11:00:00Z", "ts1", "tf1", "20.5", "ok", "forty"], "humidity", 400),
    (["2024-05-01T11:00:00Z", "ts1", "tf1", "inf", "ok", "40"], "temp", 400),
    (["yesterday", "ts1", "tf1", "20.5", "ok", "40"], "time", 400),
    (["03-JUL-2015 25:00:00", "ts1", "tf1", "20.5", "ok", "40"], "time", 400),
    (["03-JUL-2015 10:00:00 QQQ", "ts1", "tf1", "20.5", "ok", "40"], "time", 400),
    (["", "ts1", "tf1", "20.5", "ok", "40"], "time", 400),
    (["2024-05-01T11:00:00Z", "nope", "tf1", "20.5", "ok", "40"], "sensor", 404),
    (["2024-05-01T11:00:00Z", "", "tf1", "20.5", "ok", "40"], "sensor", 400),
    (["2024-05-01T11:00:00Z", "ts1", "tf2", "20.5", "ok", "40"], "feature", 400),
    (["2024-05-01T11:00:00Z", "ts1", "nope", "20.5", "ok", "40"], "feature", 400),
]


@pytest.mark.parametrize("bad, field, code", BAD_ROWS,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(BAD_ROWS)])
def test_csv_bad_row_names_line_and_column_and_stores_nothing(
        sos: Any, bad: list[str], field: str | None, code: int) -> None:
    text = _csv([HEADER, *GOOD_ROWS, bad, GOOD_ROWS[0]])
    r = _upload(sos, text)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == code, body
    assert body["line"] == 4, body  # header, two good rows, then the bad one
    assert "line 4" in body["message"]
    if field is None:  # a row with too many cells names no single column
        assert "field" not in body and "expected 6 columns, got 7" in body["message"]
    else:
        assert body["field"] == field, body
        assert field in body["message"]
    assert _stored(sos) == 0
    assert "humidity" not in _property_names(sos)  # new property rolled back too
    assert _records(sos) == [] and _records(sos, "ts2") == []


def test_csv_good_file_is_stored(fresh: Any) -> None:
    out = _ok(_upload(fresh, _csv([HEADER, *GOOD_ROWS])))
    assert (out["records"], out["values"]) == (2, 5)
    assert _stored(fresh) == 5
    assert _records(fresh) == [{"starttime": 1714557600000, "output": [
        {"name": "humidity", "value": 40.0}, {"name": "status", "value": "ok"},
        {"name": "temp", "value": 20.5}]}]


def test_csv_blank_lines_do_not_shift_line_numbers(fresh: Any) -> None:
    lines = ["time,sensor,temp",            # 1
             "",                            # 2
             "2024-05-01T10:00:00Z,ts1,1",  # 3
             "",                            # 4
             "",                            # 5
             "2024-05-01T11:00:00Z,ts1,2",  # 6
             "2024-05-01T12:00:00Z,ts1,x",  # 7  <- bad
             "",                            # 8
             "2024-05-01T13:00:00Z,ts1,4",  # 9
             "",                            # 10
             ""]                            # 11
    body = _rejected(_upload(fresh, "\n".join(lines) + "\n"), "temp")
    assert body["line"] == 7, body
    assert _stored(fresh) == 0
    # The same file with the bad cell fixed loads, blank lines and all.
    lines[6] = "2024-05-01T12:00:00Z,ts1,3"
    out = _ok(_upload(fresh, "\r\n".join(lines)))
    assert out["records"] == 4
    assert [r["output"][0]["value"] for r in _records(fresh)] == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("bad_at", [5, 40, 79])
def test_csv_rollback_and_line_numbers_across_blocks(fresh: Any, monkeypatch: Any,
                                                     bad_at: int) -> None:
    # Small blocks make a short file span many of them: good blocks are written before
    # the bad one is read, and must be rolled back; lines must count across blocks.
    monkeypatch.setattr(csvio, "BLOCK_BYTES", 128)
    lines = ["time,sensor,temp"]
    for i in range(80):
        lines.append(f"{1714557600000 + i * 1000},ts1,{'oops' if i == bad_at else i}")
        if i % 7 == 3:
            lines.append("")
    text = "\n".join(lines) + "\n"
    line = lines.index(f"{1714557600000 + bad_at * 1000},ts1,oops") + 1
    body = _rejected(_upload(fresh, text), "temp")
    assert body["line"] == line, body
    assert _stored(fresh) == 0
    good = text.replace(",oops", f",{bad_at}")
    assert _ok(_upload(fresh, good))["records"] == 80
    assert _stored(fresh) == 80


@pytest.mark.parametrize("raw, line", [
    (b"time,sensor,temp\n2024-05-01T10:00:00Z,ts1,1\n\n2024-05-01T11:00:00Z,ts1,\xff\n", 4),
    (b"time,sensor,temp\n2024-05-01T10:00:00Z,ts1,1\n\xff\xfe,ts1,2\n", 3),
    (b"time,sensor,t\xe9mp\n2024-05-01T10:00:00Z,ts1,1\n", 1),
])
def test_csv_non_utf8_is_400_on_its_line(sos: Any, raw: bytes, line: int) -> None:
    r = _upload(sos, raw)
    body = r.json()
    assert r.status_code == 200 and body["code"] == 400, body
    assert body["line"] == line and f"line {line}:" in body["message"], body
    assert "utf" in body["message"].lower(), body
    assert _stored(sos) == 0


# -- 8. awkward names round-trip --------------------------------------------------------------
NAMES = [
    "x'); DROP TABLE sos_feature;--",
    'say "hi" \'there\'',
    "Température ☃ 東京",
    "what? a&b=c #1",
    "back\\slash; --",
    "Robert'); DELETE FROM sos_observation WHERE ('1'='1",
]


@pytest.mark.parametrize("name", NAMES)
def test_awkward_names_round_trip(fresh: Any, name: str) -> None:
    meta = {name: name, "nested": [name, {"k": name}]}
    path = quote(name, safe="")
    _ok(fresh.post(f"{SOS}/features", json={"name": name, "description": name, "metadata": meta}))
    _ok(fresh.post(f"{SOS}/observedProperties", json={"name": name, "type": "text",
                                                    "unit": name, "description": name}))
    _ok(fresh.post(f"{SOS}/sensors", json={"name": name, "feature": name, "description": name,
                                         "metadata": meta, "outputs": [name]}))
    f = fresh.get(f"{SOS}/features/{path}").json()
    assert (f["name"], f["description"], f["metadata"]) == (name, name, meta)
    s = fresh.get(f"{SOS}/sensors/{path}").json()
    assert (s["name"], s["feature"], s["metadata"]) == (name, name, meta)
    assert s["outputs"] == [{"name": name, "type": "text", "unit": name}]
    p = fresh.get(f"{SOS}/observedProperties/{path}").json()
    assert p == {"name": name, "type": "text", "unit": name, "description": name}
    assert name in [x["name"] for x in fresh.get(f"{SOS}/features").json()]
    assert [x["name"] for x in fresh.get(f"{SOS}/sensors", params={"feature": name}).json()] == [
        name]

    # JSON path: the name as sensor, feature and property, and as a text value.
    _ok(fresh.post(f"{SOS}/observations", json={"observations": [{
        "sensor": name, "feature": name, "record": [
            {"starttime": "2024-05-01T10:00:00Z", "output": [{"name": name, "value": name}]}]}]}))
    # CSV path: quoted by the csv module where needed (the name may hold quotes).
    _ok(_upload(fresh, _csv([["time", "sensor", "feature", name],
                           ["2024-05-01T11:00:00Z", name, name, name + "!"]])))
    got = fresh.get(f"{SOS}/observations", params={"sensor": name, "timeFormat": "epoch"}).json()
    assert got["observations"] == [{"sensor": name, "feature": name, "record": [
        {"starttime": 1714557600000, "output": [{"name": name, "value": name}]},
        {"starttime": 1714561200000, "output": [{"name": name, "value": name + "!"}]}]}]
    by_feature = fresh.get(f"{SOS}/observations", params={"feature": name}).json()
    assert by_feature["count"] == 2
    # The CSV download quotes it back so that it parses to the same cells.
    r = fresh.get(f"{SOS}/observations", params={"sensor": name, "format": "csv"})
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["time", "sensor", "feature", name]
    assert [row[1:] for row in rows[1:]] == [[name, name, name], [name, name, name + "!"]]
    caps = fresh.get(f"{SOS}/capabilities").json()
    assert caps["sensorOutput"][name] == [name]
    # Nothing was executed: the tables are all still there and hold what they should.
    assert fresh.get(f"{SOS}/count").json() == {"sensors": 3, "features": 3,
                                              "observedProperties": 3}
    assert _stored(fresh) == 2
    _ok(fresh.put(f"{SOS}/features/{path}", json={"description": name + name}), 200)
    assert fresh.get(f"{SOS}/features/{path}").json()["description"] == name + name
    r = fresh.delete(f"{SOS}/observations", params={"sensor": name})
    assert r.status_code == 200 and r.json()["deleted"] == 2
    assert fresh.delete(f"{SOS}/sensors/{path}").status_code == 200
    assert fresh.delete(f"{SOS}/observedProperties/{path}").status_code == 200
    assert fresh.delete(f"{SOS}/features/{path}").status_code == 200
    assert fresh.get(f"{SOS}/features/{path}").status_code == 404


@pytest.mark.parametrize("path, body, field", [
    ("features", {"name": "a/b"}, "feature.name"),
    ("features", {"name": "/"}, "feature.name"),
    ("sensors", {"name": "s/1", "feature": "tf1"}, "sensor.name"),
    ("sensors", {"name": "s1", "feature": "tf/1"}, "sensor.feature"),
    ("observedProperties", {"name": "m/s"}, "observedProperty.name"),
    ("sensors", {"name": "s1", "feature": "tf1", "outputs": ["km/h"]}, "sensor.outputs[0].name"),
    ("observations", _obs(record=[{"starttime": "2024-05-01T10:00:00Z",
                                   "output": [{"name": "km/h", "value": 1}]}]),
     "observations[0].record[0].output[0].name"),
])
def test_names_with_slash_are_rejected(sos: Any, path: str, body: Any, field: str) -> None:
    before = sos.get(f"{SOS}/count").json()
    msg = _rejected(sos.post(f"{SOS}/{path}", json=body), field)["message"]
    assert "'/'" in msg
    assert sos.get(f"{SOS}/count").json() == before
    assert _stored(sos) == 0


def test_slash_in_csv_property_column_is_rejected(sos: Any) -> None:
    body = _rejected(_upload(sos, "time,sensor,km/h\n2024-05-01T10:00:00Z,ts1,1\n"), "km/h")
    assert body["line"] == 1 and "'/'" in body["message"]
    assert "km/h" not in _property_names(sos)


# -- 5. size limits ---------------------------------------------------------------------------
def _big_observations(n: int) -> dict[str, Any]:
    return _obs(record=[{"starttime": 1714557600000 + i, "output": [{"name": "temp", "value": i}]}
                        for i in range(n)])


@pytest.mark.parametrize("streamed", [False, True])
def test_json_body_over_limit_is_413(make_app: Any, db_url: str, streamed: bool) -> None:
    api = make_app(db_url, max_body_bytes=1000)
    _seed(api)
    raw = json.dumps(_big_observations(40)).encode()
    assert len(raw) > 1000
    content: Any = iter([raw[i:i + 256] for i in range(0, len(raw), 256)]) if streamed else raw
    r = api.post(f"{SOS}/observations", content=content,
                 headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json() == {"code": 413, "message": "request body too large: the limit is 1000 "
                                                "bytes"}
    assert _stored(api) == 0
    big_feature = {"name": "big", "description": "x" * 2000}
    r = api.post(f"{SOS}/features", json=big_feature)
    assert r.status_code == 413 and r.json()["code"] == 413
    assert api.get(f"{SOS}/features/big").status_code == 404
    # Under the limit the same route works.
    _ok(api.post(f"{SOS}/observations", json=_big_observations(3)))
    assert _stored(api) == 3


@pytest.mark.parametrize("streamed", [False, True])
def test_csv_upload_over_limit_is_413(make_app: Any, db_url: str, streamed: bool) -> None:
    api = make_app(db_url, max_upload_bytes=2000)
    _seed(api)
    rows = [["time", "sensor", "temp"]] + [[str(1714557600000 + i), "ts1", str(i)]
                                           for i in range(200)]
    raw = _csv(rows).encode()
    assert len(raw) > 2000
    content: Any = iter([raw[i:i + 500] for i in range(0, len(raw), 500)]) if streamed else raw
    r = api.post(f"{SOS}/observations/csv", content=content, headers=CSV)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == 413 and "2000" in r.json()["message"]
    assert _stored(api) == 0
    assert list((api.app.state.settings.data_path / "tmp").glob("*")) == []
    _ok(_upload(api, _csv(rows[:20])))
    assert _stored(api) == 19


@pytest.mark.e2e
def test_percent_signs_in_names_round_trip_through_a_real_server(server: Any) -> None:
    # In-process, Starlette's TestClient decodes the path twice, so '%' in a name is
    # checked against a real server, where the path is decoded exactly once.
    import httpx

    name = "50% of a%20b?c=d&e#f"
    headers = {"x-api-key": server.new_key()}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        assert http.post(f"{SOS}/features", json={"name": name}).json()["code"] == 201
        r = http.get(f"{SOS}/features/{quote(name, safe='')}")
        assert r.status_code == 200 and r.json()["name"] == name
        r = http.get(f"{SOS}/features/{quote('50% of a b?c=d&e#f', safe='')}")
        assert r.status_code == 404

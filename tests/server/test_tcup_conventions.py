"""Probes of TCUP conventions (tcup-api.md §1-§3) that no other test showed: the platform
called as a TCUP client calls it (raw HTTP, the documented headers, paths and bodies).
docs/tcup-compatibility.md cites them; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dls_helper import DLS, Dls
from sos_helper import stored_values

SOS = "/api/sos/v2.0"
IST_0710 = 1435909200000  # 03-JUL-2015 13:10:00 IST = 07:40:00 UTC, epoch ms


@pytest.fixture
def sos(make_app: Any, db_url: str) -> Any:
    api = make_app(db_url)
    assert api.post(f"{SOS}/features", json={"name": "NODE42"}).json()["code"] == 201
    r = api.post(f"{SOS}/sensors", json={"name": "NODE42_Temperature", "feature": "NODE42"})
    assert r.json()["code"] == 201, r.json()
    return api


def _insert(api: Any, records: list[dict[str, Any]], **item: Any) -> dict[str, Any]:
    body = {"observations": [{"sensor": "NODE42_Temperature", "record": records, **item}]}
    r = api.post(f"{SOS}/observations", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _records(api: Any) -> list[dict[str, Any]]:
    r = api.get(f"{SOS}/observations", params={"sensor": "NODE42_Temperature",
                                               "timeFormat": "epoch"})
    assert r.status_code == 200, r.text
    obs = r.json()["observations"]
    return obs[0]["record"] if obs else []


def test_the_c1_adapters_body_is_stored_as_sent_without_content_type(sos: Any) -> None:
    # §1.2 Content-Type optional, §1.5 version, §2.3 the C1 body: the adapter's JSON,
    # posted with no Content-Type header at all.
    body = {"version": "1.0.1", "observations": [{
        "sensor": "NODE42_Temperature", "feature": "NODE42", "record": [{
            "starttime": "03-JUL-2015 13:10:00 IST",
            "output": [{"name": "Temperature", "value": 23.5},
                       {"name": "Humidity", "value": 61},
                       {"name": "Latitude", "value": 22.57},
                       {"name": "Longitude", "value": 88.36}]}]}]}
    r = sos.client.post(f"{SOS}/observations", content=json.dumps(body).encode(),
                        headers={"x-api-key": sos.api_key})
    assert "content-type" not in r.request.headers
    assert r.status_code == 200 and r.json()["code"] == 201, r.text
    [rec] = _records(sos)
    assert rec["starttime"] == IST_0710
    assert {o["name"]: o["value"] for o in rec["output"]} == {
        "Temperature": 23.5, "Humidity": 61, "Latitude": 22.57, "Longitude": 88.36}


def test_version_is_optional_and_not_stored(sos: Any) -> None:
    # §1.5: with or without version, the same answer; version appears in no answer.
    one = {"starttime": "03-JUL-2015 13:10:00 IST", "output": [{"name": "t", "value": 1}]}
    two = {"starttime": "03-JUL-2015 13:11:00 IST", "output": [{"name": "t", "value": 2}]}
    for rec, extra in ((one, {"version": "1.0.1"}), (two, {})):
        body = {**extra, "observations": [{"sensor": "NODE42_Temperature", "record": [rec]}]}
        assert sos.post(f"{SOS}/observations", json=body).json()["code"] == 201
    a = sos.get(f"{SOS}/observations", params={"sensor": "NODE42_Temperature"})
    assert a.status_code == 200 and "version" not in a.text, a.text
    assert stored_values(sos) == 2


def test_version_is_optional_in_the_other_sos_writes(sos: Any) -> None:
    # §1.5: optional in every SOS POST/PUT, and not stored.
    writes = [sos.put(f"{SOS}/features/NODE42", json={"version": "1.0.1", "description": "d"}),
              sos.post(f"{SOS}/features", json={"version": "1.0.1", "name": "NODE43"}),
              sos.post(f"{SOS}/sensors", json={"version": "1.0.1", "name": "s43",
                                               "feature": "NODE43"}),
              sos.put(f"{SOS}/sensors/s43", json={"version": "1.0.1", "description": "d"}),
              sos.post(f"{SOS}/observedProperties", json={"version": "1.0.1", "name": "p43"}),
              sos.put(f"{SOS}/observedProperties/p43", json={"version": "1.0.1", "unit": "K"})]
    assert [w.json()["code"] for w in writes] == [200, 201, 201, 200, 201, 200], \
        [w.text for w in writes]
    for path in ("features/NODE43", "sensors/s43", "observedProperties/p43"):
        assert "version" not in sos.get(f"{SOS}/{path}").json(), path
    bad = sos.post(f"{SOS}/features", json={"version": 1.0, "name": "NODE44"}).json()
    assert bad["code"] == 400 and bad["field"] == "feature.version", bad


def test_feature_may_be_left_out_of_an_observation(sos: Any) -> None:
    # §2.3: one C1 builder sends no feature; the sensor's own feature is used.
    rec = {"starttime": "03-JUL-2015 13:10:00 IST", "output": [{"name": "t", "value": 1}]}
    assert _insert(sos, [rec])["code"] == 201
    got = sos.get(f"{SOS}/observations", params={"feature": "NODE42"}).json()
    assert got["observations"][0]["feature"] == "NODE42"


def test_values_may_be_numbers_or_strings(sos: Any) -> None:
    # §2.3: C1 puts raw Java objects in value: numbers and strings are both taken.
    rec = {"starttime": IST_0710, "output": [{"name": "level", "value": 3},
                                             {"name": "state", "value": "open"}]}
    assert _insert(sos, [rec])["code"] == 201
    [got] = _records(sos)
    assert {o["name"]: o["value"] for o in got["output"]} == {"level": 3, "state": "open"}


def test_record_fields_of_the_mr_grammar_are_accepted_and_not_stored(sos: Any) -> None:
    # §2.3: endtime, meta-data, parameter, quality, position (the MR grammar's fields)
    # and unknown keys are accepted; the record stored holds starttime and outputs only.
    rec = {"starttime": "03-JUL-2015 13:10:00 IST", "endtime": "03-JUL-2015 13:15:00 IST",
           "output": [{"name": "t", "value": 1.5, "type": "quantity"}],
           "meta-data": [{"name": "firmware", "value": "2.1"}],
           "parameter": [{"name": "gain", "value": 4}],
           "quality": [{"name": "calibrated", "value": "yes"}],
           "position": {"points": [{"x": "22.57", "y": "88.36"}]},
           "somethingElse": True}
    assert _insert(sos, [rec], somethingElse=1)["code"] == 201
    assert _records(sos) == [{"starttime": IST_0710, "output": [{"name": "t", "value": 1.5}]}]


def test_an_endtime_before_the_starttime_is_refused_in_the_body(sos: Any) -> None:
    rec = {"starttime": "03-JUL-2015 13:10:00 IST", "endtime": "03-JUL-2015 13:00:00 IST",
           "output": [{"name": "t", "value": 1}]}
    out = _insert(sos, [rec])
    assert out["code"] == 400 and "endtime" in out["field"], out
    assert stored_values(sos) == 0


FOUR_PATTERNS = [
    ("03-JUL-2015 07:40:00", IST_0710),  # dd-MMM-yyyy HH:mm:ss (no zone: UTC)
    ("03-JUL-2015 07:40:00.250", IST_0710 + 250),  # dd-MMM-yyyy HH:mm:ss.SSS
    ("03-JUL-2015 13:10:00 IST", IST_0710),  # dd-MMM-yyyy HH:mm:ss z
    ("03-jul-2015 13:10:00.999 ist", IST_0710 + 999),  # .SSS z, any case
]


@pytest.mark.parametrize("value, ms", FOUR_PATTERNS, ids=[v for v, _ in FOUR_PATTERNS])
def test_the_four_tcup_time_patterns_are_stored_in_utc_to_the_millisecond(
        sos: Any, value: str, ms: int) -> None:
    assert _insert(sos, [{"starttime": value, "output": [{"name": "t", "value": 1}]}])[
        "code"] == 201
    assert [r["starttime"] for r in _records(sos)] == [ms]
    # Emitted in TCUP's form with milliseconds, in UTC.
    got = sos.get(f"{SOS}/observations", params={"sensor": "NODE42_Temperature"}).json()
    assert got["observations"][0]["record"][0]["starttime"] == (
        f"03-JUL-2015 07:40:00.{ms - IST_0710:03d} UTC")


def test_put_answers_200_with_the_code_in_the_body(sos: Any) -> None:
    # §1.3 for PUT: an update of a missing feature is 200 {code: 404}.
    r = sos.put(f"{SOS}/features/nowhere", json={"description": "x"})
    assert r.status_code == 200 and r.json()["code"] == 404, r.text
    r = sos.put(f"{SOS}/features/NODE42", json={"description": "x"})
    assert r.status_code == 200 and r.json()["code"] == 200, r.text


def test_the_sos_endpoints_the_reference_names_exist(sos: Any) -> None:
    # §2.2: every [DOC]/[CODE]/[INF] endpoint but /feeds, /files and /users answers.
    assert sos.post(f"{SOS}/observedProperties", json={"name": "rh"}).json()["code"] == 201
    for path in ("/features", "/features/NODE42", "/sensors", "/sensors/NODE42_Temperature",
                 "/observedProperties", "/observedProperties/rh", "/observations",
                 "/capabilities", "/v2/api-docs"):
        r = sos.get(f"{SOS}{path}")
        assert r.status_code == 200, (path, r.text)
    for path in ("/feeds", "/files", "/users"):
        assert sos.get(f"{SOS}{path}").status_code == 404, path


def test_dls_bulk_answers_are_dls_responses_without_nulls(make_app: Any, db_url: str) -> None:
    # §3.2: 207 with one DlsResponse per item: key, value, code, messages; nulls left out.
    lake = Dls(make_app(db_url), "alice", "bob")
    assert lake.upload("alice", b"a", "a.csv").status_code == 201
    uri = lake.uri("alice", "a.csv")
    r = lake.api.put(f"{DLS}/share", json={"file-uri": uri, "users": ["bob"],
                                          "permissions": "R"}, headers=lake.headers("alice"))
    assert r.status_code == 207, r.text
    assert r.json()[0]["messages"][0] == "shared"  # TCUP's message words
    missing = lake.uri("alice", "gone.csv")
    r = lake.delete("alice", uri, missing)
    assert r.status_code == 207, r.text
    items = r.json()
    assert isinstance(items, list) and len(items) == 2
    for item in items:
        assert set(item) <= {"key", "value", "code", "messages"} and None not in item.values()
        assert isinstance(item["code"], int) and isinstance(item["messages"], list)
    assert [i["code"] for i in items] == [200, 404] or [i["code"] for i in items] == [204, 404]
    assert [i["value"] for i in items] == [uri, missing]
    assert items[0]["messages"] == ["deleted"]


@pytest.fixture
def lake(make_app: Any, db_url: str) -> Dls:
    return Dls(make_app(db_url), "alice")


@pytest.mark.parametrize(("param", "limit", "good", "bad"), [
    ("filename", 255, "f" * 251 + ".csv", "f" * 252 + ".csv"),
    ("savepoint", 50, "run-" + "v" * 46, "run-" + "v" * 47),
    ("comment", 255, "c" * 255, "c" * 256),
])
def test_dls_lengths_are_tcups(lake: Dls, param: str, limit: int, good: str,
                               bad: str) -> None:
    # §3.6: filename and comment at most 255 characters, savepoint at most 50.
    assert len(good) == limit and len(bad) == limit + 1
    args = {"filename": "f.csv", param: good}
    r = lake.upload("alice", b"x", **args)
    assert r.status_code == 201, r.text
    args[param] = bad
    r = lake.upload("alice", b"x", **args)
    assert r.status_code == 400 and r.json()["field"] == param, r.text


def test_dls_search_by_uri(lake: Dls) -> None:
    # §3.5: uri, a file URI, finds that file alone.
    for name in ("a.csv", "b.csv"):
        assert lake.upload("alice", b"x", name, directory="d").status_code == 201
    uri = lake.uri("alice", "d/b.csv")
    r = lake.api.get(f"{DLS}/catalog", params={"uri": uri}, headers=lake.headers("alice"))
    assert r.status_code == 200, r.text
    assert [f["uri"] for f in r.json()["result"]] == [uri]

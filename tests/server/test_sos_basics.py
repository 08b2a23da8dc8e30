"""SOS routes in-process, on SQLite and PostgreSQL: the happy paths."""

from __future__ import annotations

SOS = "/api/sos/v2.0"


def _setup(api) -> None:
    assert api.post(f"{SOS}/features", json={"name": "tf1"}).json()["code"] == 201
    r = api.post(f"{SOS}/sensors", json={"name": "ts1", "feature": "tf1",
                                         "outputs": [{"name": "temp", "unit": "C"}]})
    assert r.json()["code"] == 201


def test_write_answers_200_with_code_in_body(api_any) -> None:
    _setup(api_any)
    r = api_any.post(f"{SOS}/features", json={"name": "tf1"})
    assert r.status_code == 200
    assert r.json()["code"] == 409


def test_insert_and_query_round_trip(api_any) -> None:
    _setup(api_any)
    body = {"observations": [{"sensor": "ts1", "feature": "tf1", "record": [
        {"starttime": "03-JUL-2015 13:10:00 IST", "output": [{"name": "temp", "value": 23.5}]},
        {"starttime": "2015-07-03T07:41:00Z", "output": [{"name": "temp", "value": 24}]},
    ]}]}
    r = api_any.post(f"{SOS}/observations", json=body)
    assert r.json()["code"] == 201, r.json()
    got = api_any.get(f"{SOS}/observations", params={"sensor": "ts1"}).json()
    records = got["observations"][0]["record"]
    assert [rec["starttime"] for rec in records] == [
        "03-JUL-2015 07:40:00.000 UTC", "03-JUL-2015 07:41:00.000 UTC"]
    assert [rec["output"][0]["value"] for rec in records] == [23.5, 24.0]
    caps = api_any.get(f"{SOS}/capabilities").json()
    assert caps == {"count": {"sensors": 1, "features": 1}, "sensorOutput": {"ts1": ["temp"]}}


def test_names_with_commas_and_spaces_are_exact_in_queries(api_any) -> None:
    api_any.post(f"{SOS}/features", json={"name": "Paris, France"})
    for name in ("a,b", " c "):
        api_any.post(f"{SOS}/sensors", json={"name": name, "feature": "Paris, France"})
        api_any.post(f"{SOS}/observations", json={"observations": [{"sensor": name, "record": [
            {"starttime": 1000, "output": [{"name": "v", "value": 1}]}]}]})
    got = api_any.get(f"{SOS}/observations", params={"feature": "Paris, France"}).json()
    assert sorted(o["sensor"] for o in got["observations"]) == [" c ", "a,b"]
    one = api_any.get(f"{SOS}/observations", params=[("sensor", "a,b"), ("sensor", " c ")])
    assert len(one.json()["observations"]) == 2
    f = api_any.get(f"{SOS}/observations", params=[("sensor", "a,b"), ("filter", "v>=1"),
                                                   ("filter", "v<2")]).json()
    assert f["count"] == 1

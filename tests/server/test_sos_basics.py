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

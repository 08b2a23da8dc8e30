"""Tenant isolation on every SOS endpoint: another tenant's features, sensors, observed
properties and observations can be neither seen nor changed; they look like they do not
exist (404, the same answer as for a name nobody has), never 403 with details."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from pyconnector_server.auth import create_api_key

SOS = "/api/sos/v2.0"
CSV = {"content-type": "text/csv"}
T0 = 1714557600000  # 2024-05-01T10:00:00Z


def _as(api: Any, key: str) -> Any:
    """The same app, as the tenant of ``key``."""
    return dataclasses.replace(api, api_key=key)


def _new_tenant(api: Any, prefix: str) -> Any:
    return _as(api, create_api_key(api.app.state.db, f"{prefix}-{uuid.uuid4().hex[:8]}"))


def _code(r: Any) -> int:
    """The outcome: the body code of a TCUP write (HTTP 200), else the HTTP status."""
    if r.request.method in ("POST", "PUT") and r.status_code == 200:
        return r.json()["code"]
    return r.status_code


def _ok(r: Any, code: int = 201) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    assert r.json()["code"] == code, r.json()
    return r.json()


def _populate(c: Any, prefix: str, value: float) -> None:
    _ok(c.post(f"{SOS}/features", json={"name": f"f{prefix}", "description": prefix,
                                        "metadata": {"owner": prefix}}))
    _ok(c.post(f"{SOS}/features", json={"name": f"f{prefix}-child", "parent": f"f{prefix}"}))
    _ok(c.post(f"{SOS}/observedProperties", json={"name": f"p{prefix}", "unit": "C"}))
    _ok(c.post(f"{SOS}/sensors", json={"name": f"s{prefix}", "feature": f"f{prefix}",
                                       "outputs": [f"p{prefix}"]}))
    _ok(c.post(f"{SOS}/sensors", json={"name": f"s{prefix}-2", "feature": f"f{prefix}-child"}))
    _ok(c.post(f"{SOS}/observations", json={"observations": [{
        "sensor": f"s{prefix}", "feature": f"f{prefix}", "record": [
            {"starttime": T0 + i * 60_000, "output": [{"name": f"p{prefix}", "value": value + i},
                                                      {"name": "status", "value": prefix}]}
            for i in range(3)]}]}))


def _snapshot(c: Any, prefix: str) -> dict[str, Any]:
    """Everything tenant ``prefix`` can see of its own data."""
    return {
        "features": c.get(f"{SOS}/features").json(),
        "sensors": c.get(f"{SOS}/sensors").json(),
        "properties": c.get(f"{SOS}/observedProperties").json(),
        "observations": c.get(f"{SOS}/observations",
                              params={"feature": f"f{prefix}", "timeFormat": "epoch"}).json(),
        "count": c.get(f"{SOS}/count").json(),
        "capabilities": c.get(f"{SOS}/capabilities").json(),
    }


def _two_tenants(api: Any) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Tenants A and B on one app, each with its own data; and snapshots of both."""
    a, b = _new_tenant(api, "a"), _new_tenant(api, "b")
    _populate(a, "A", 1.0)
    _populate(b, "B", 100.0)
    snap_a, snap_b = _snapshot(a, "A"), _snapshot(b, "B")
    assert snap_b["observations"]["count"] == 3
    return a, b, snap_a, snap_b


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_tenants(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   app_opener: Any
                   ) -> Iterator[tuple[Any, Any, dict[str, Any], dict[str, Any]]]:
    """Two populated tenants on one app per store, shared by the module: every test that
    uses them asserts that neither tenant's data changed, so sharing is safe and fast."""
    db = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with app_opener(tmp_path_factory.mktemp("tenants"), db) as api:
        yield _two_tenants(api)


@pytest.fixture
def tenants(shared_tenants: Any) -> Iterator[tuple[Any, Any, dict[str, Any], dict[str, Any]]]:
    yield shared_tenants
    _unchanged(*shared_tenants)


@pytest.fixture
def fresh_tenants(api_any: Any) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Two populated tenants of their own, for tests that change A's data."""
    return _two_tenants(api_any)


def _unchanged(a: Any, b: Any, snap_a: dict[str, Any], snap_b: dict[str, Any]) -> None:
    assert _snapshot(b, "B") == snap_b
    assert _snapshot(a, "A") == snap_a


KINDS = [("features", "fB", "feature"), ("sensors", "sB", "sensor"),
         ("observedProperties", "pB", "observed property")]


@pytest.mark.parametrize("kind, name, word", KINDS)
def test_get_of_another_tenants_thing_is_404_as_if_missing(tenants: Any, kind: str, name: str,
                                                          word: str) -> None:
    a, b, snap_a, snap_b = tenants
    assert b.get(f"{SOS}/{kind}/{name}").status_code == 200  # it does exist, for B
    r = a.get(f"{SOS}/{kind}/{name}")
    assert r.status_code == 404
    assert r.json() == {"code": 404, "message": f"{word} {name!r} not found"}
    missing = a.get(f"{SOS}/{kind}/nobody-has-this").json()
    assert missing == {"code": 404, "message": f"{word} 'nobody-has-this' not found"}


def test_lists_show_only_own_things(tenants: Any) -> None:
    a, b, snap_a, snap_b = tenants
    assert [f["name"] for f in snap_a["features"]] == ["fA", "fA-child"]
    assert [s["name"] for s in snap_a["sensors"]] == ["sA", "sA-2"]
    assert [p["name"] for p in snap_a["properties"]] == ["pA", "status"]
    assert [f["name"] for f in snap_b["features"]] == ["fB", "fB-child"]
    assert [s["name"] for s in snap_b["sensors"]] == ["sB", "sB-2"]
    everything = a.get(f"{SOS}/observations").json()
    assert {o["sensor"] for o in everything["observations"]} == {"sA"}
    assert everything["count"] == 3
    assert [s["name"] for s in a.get(f"{SOS}/sensors", params={"feature": "fA"}).json()] == ["sA"]
    assert [f["name"] for f in a.get(f"{SOS}/features", params={"parent": "fA"}).json()] == [
        "fA-child"]


@pytest.mark.parametrize("kind, name, body", [
    ("features", "fB", {"description": "taken over"}),
    ("features", "fB", {"parent": "fA"}),
    ("features", "fB-child", {"parent": None}),
    ("sensors", "sB", {"description": "taken over"}),
    ("sensors", "sB", {"feature": "fA"}),
    ("sensors", "sB", {"outputs": ["pA"]}),
    ("observedProperties", "pB", {"unit": "K"}),
    ("observedProperties", "status", {"type": "count"}),  # A has its own 'status'
])
def test_update_of_another_tenants_thing_is_404(tenants: Any, kind: str, name: str,
                                                body: dict[str, Any]) -> None:
    a, b, snap_a, snap_b = tenants
    if name == "status":
        # A's own property of that name exists, so A's update is A's business: it applies to
        # A's property only (409 here: A's property has observations), never to B's.
        assert _code(a.put(f"{SOS}/{kind}/{name}", json=body)) == 409
    else:
        r = a.put(f"{SOS}/{kind}/{name}", json=body)
        assert r.status_code == 200
        assert r.json()["code"] == 404, r.json()
        assert "field" not in r.json()
    _unchanged(a, b, snap_a, snap_b)


@pytest.mark.parametrize("path", [
    "features/fB", "features/fB?cascade=true", "features/fB-child",
    "sensors/sB", "sensors/sB-2", "observedProperties/pB",
])
def test_delete_of_another_tenants_thing_is_404(tenants: Any, path: str) -> None:
    a, b, snap_a, snap_b = tenants
    r = a.delete(f"{SOS}/{path}")
    assert r.status_code == 404, r.text
    assert r.json()["code"] == 404
    _unchanged(a, b, snap_a, snap_b)


@pytest.mark.parametrize("method, path, body, field", [
    ("POST", "sensors", {"name": "s-new", "feature": "fB"}, "sensor.feature"),
    ("POST", "sensors", {"name": "s-comp", "feature": "fA", "type": "composite",
                         "members": ["sA", "sB"]}, "sensor.members[1]"),
    ("POST", "features", {"name": "f-new", "parent": "fB"}, "feature.parent"),
    ("POST", "features", [{"name": "f-new", "parent": "fB"}], "features[0].parent"),
    ("PUT", "sensors/sA", {"feature": "fB"}, "sensor.feature"),
    ("PUT", "sensors/sA-2", {"type": "composite", "members": ["sB"]}, "sensor.members[0]"),
    ("PUT", "features/fA", {"parent": "fB"}, "feature.parent"),
])
def test_references_to_another_tenants_things_are_404(tenants: Any, method: str, path: str,
                                                      body: Any, field: str) -> None:
    a, b, snap_a, snap_b = tenants
    r = a.client.request(method, f"{SOS}/{path}", json=body, headers={"x-api-key": a.api_key})
    assert r.status_code == 200
    assert r.json()["code"] == 404 and r.json()["field"] == field, r.json()
    _unchanged(a, b, snap_a, snap_b)


@pytest.mark.parametrize("params", [
    {"feature": "fB"},
    {"parent": "fB"},
])
def test_list_filtered_by_another_tenants_feature_is_404(tenants: Any,
                                                         params: dict[str, str]) -> None:
    a, b, *_ = tenants
    kind = "sensors" if "feature" in params else "features"
    assert b.get(f"{SOS}/{kind}", params=params).status_code == 200
    r = a.get(f"{SOS}/{kind}", params=params)
    assert r.status_code == 404
    assert r.json() == {"code": 404, "message": "feature 'fB' not found"}


@pytest.mark.parametrize("item, field", [
    ({"sensor": "sB"}, "observations[0].sensor"),
    ({"sensor": "sB", "feature": "fB"}, "observations[0].sensor"),
    ({"sensor": "sA", "feature": "fB"}, "observations[0].feature"),
])
def test_observation_insert_against_another_tenants_sensor(tenants: Any, item: dict[str, Any],
                                                           field: str) -> None:
    a, b, snap_a, snap_b = tenants
    record = [{"starttime": T0, "output": [{"name": "pB", "value": -1},
                                           {"name": "status", "value": "hijacked"}]}]
    r = a.post(f"{SOS}/observations", json={"observations": [{**item, "record": record}]})
    body = r.json()
    assert r.status_code == 200 and body["code"] in (400, 404), body
    assert body["field"] == field
    if field.endswith("sensor"):
        assert body["code"] == 404 and body["message"].endswith("sensor 'sB' not found")
    _unchanged(a, b, snap_a, snap_b)


def test_observation_batch_cannot_reach_another_tenants_sensor(fresh_tenants: Any) -> None:
    a, b, snap_a, snap_b = fresh_tenants
    record = [{"starttime": T0 + 3_600_000, "output": [{"name": "pA", "value": 7}]}]
    body = _ok(a.post(f"{SOS}/observations", json={"observations": [
        {"sensor": "sA", "record": record}, {"sensor": "sB", "record": record}]}), 207)
    assert [r["code"] for r in body["results"]] == [201, 404]
    assert _snapshot(b, "B") == snap_b
    assert a.get(f"{SOS}/observations", params={"sensor": "sA"}).json()["count"] == 4


@pytest.mark.parametrize("params", [
    {"sensor": "sB"},
    {"sensor": "sA,sB"},
    {"sensor": ["sA", "sB"]},
    {"feature": "fB"},
    {"feature": "fB", "sensor": "sB"},
    {"sensor": "sB", "format": "csv"},
    {"sensor": "sB", "format": "arrow"},
    {"sensor": "sB", "latest": "1"},
])
def test_observation_query_of_another_tenant_is_404(tenants: Any,
                                                    params: dict[str, Any]) -> None:
    a, b, *_ = tenants
    assert b.get(f"{SOS}/observations", params={"sensor": "sB"}).json()["count"] == 3
    r = a.get(f"{SOS}/observations", params=params)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == 404
    assert "100" not in r.text and '"B"' not in r.text  # none of B's values


def test_query_by_own_feature_and_anothers_sensor_reveals_nothing(tenants: Any) -> None:
    a, *_ = tenants
    r = a.get(f"{SOS}/observations", params={"feature": "fA", "sensor": "sB"})
    # Either "no such sensor" or an empty answer; never B's records.
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert r.json()["count"] == 0 and r.json()["observations"] == []


@pytest.mark.parametrize("params", [
    {"sensor": "sB"},
    {"sensor": "sA,sB"},
    {"feature": "fB"},
    {"sensor": "sB", "start": "2024-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"},
])
def test_observation_delete_of_another_tenant_is_404(tenants: Any,
                                                     params: dict[str, str]) -> None:
    a, b, snap_a, snap_b = tenants
    r = a.delete(f"{SOS}/observations", params=params)
    assert r.status_code == 404, r.text
    assert r.json()["code"] == 404
    _unchanged(a, b, snap_a, snap_b)


def test_observation_delete_by_own_feature_and_anothers_sensor_deletes_nothing_of_b(
        tenants: Any) -> None:
    a, b, snap_a, snap_b = tenants
    r = a.delete(f"{SOS}/observations", params={"feature": "fA", "sensor": "sB"})
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert r.json()["deleted"] == 0
    _unchanged(a, b, snap_a, snap_b)


@pytest.mark.parametrize("text, line, field, code", [
    ("time,sensor,pB\n2024-05-01T10:00:00Z,sB,-1\n", 2, "sensor", 404),
    ("time,sensor,pA\n2024-05-01T11:00:00Z,sA,5\n2024-05-01T12:00:00Z,sB,-1\n", 3, "sensor",
     404),
    ("time,sensor,feature,pA\n2024-05-01T11:00:00Z,sA,fB,5\n", 2, "feature", 400),
])
def test_csv_upload_naming_another_tenants_sensor(tenants: Any, text: str, line: int,
                                                  field: str, code: int) -> None:
    a, b, snap_a, snap_b = tenants
    r = a.post(f"{SOS}/observations/csv", content=text, headers=CSV)
    body = r.json()
    assert r.status_code == 200 and body["code"] == code, body
    assert (body["line"], body["field"]) == (line, field)
    _unchanged(a, b, snap_a, snap_b)  # A's good rows before the bad one are not stored


def test_capabilities_and_count_show_only_own_data(tenants: Any) -> None:
    a, b, snap_a, snap_b = tenants
    assert snap_a["count"] == {"sensors": 2, "features": 2, "observedProperties": 2}
    assert snap_a["capabilities"] == {"count": {"sensors": 2, "features": 2},
                                      "sensorOutput": {"sA": ["pA", "status"], "sA-2": []}}
    assert snap_b["capabilities"]["sensorOutput"] == {"sB": ["pB", "status"], "sB-2": []}
    # A brand-new tenant sees nothing at all.
    c = _new_tenant(a, "c")
    assert c.get(f"{SOS}/count").json() == {"sensors": 0, "features": 0,
                                            "observedProperties": 0}
    assert c.get(f"{SOS}/capabilities").json() == {"count": {"sensors": 0, "features": 0},
                                                   "sensorOutput": {}}
    for kind in ("features", "sensors", "observedProperties"):
        assert c.get(f"{SOS}/{kind}").json() == []
    assert c.get(f"{SOS}/observations").json()["observations"] == []


def test_same_names_in_two_tenants_are_independent(api_any: Any) -> None:
    a = api_any
    b = _new_tenant(a, "b")
    for c, ptype, value in ((a, "quantity", 1.5), (b, "text", "b-value")):
        _ok(c.post(f"{SOS}/features", json={"name": "f", "description": ptype}))
        _ok(c.post(f"{SOS}/observedProperties", json={"name": "p", "type": ptype}))
        _ok(c.post(f"{SOS}/sensors", json={"name": "s", "feature": "f", "outputs": ["p"]}))
        _ok(c.post(f"{SOS}/observations", json={"observations": [{"sensor": "s", "record": [
            {"starttime": T0, "output": [{"name": "p", "value": value}]}]}]}))
    # Auto-registered properties are per tenant too: 'auto' is a number for A, text for B.
    _ok(a.post(f"{SOS}/observations", json={"observations": [{"sensor": "s", "record": [
        {"starttime": T0, "output": [{"name": "auto", "value": 5}]}]}]}))
    _ok(b.post(f"{SOS}/observations/csv", content="time,sensor,auto\n"
               f"{T0},s,five\n", headers=CSV))
    assert a.get(f"{SOS}/observedProperties/auto").json()["type"] == "quantity"
    assert b.get(f"{SOS}/observedProperties/auto").json()["type"] == "text"
    assert a.get(f"{SOS}/features/f").json()["description"] == "quantity"
    assert b.get(f"{SOS}/features/f").json()["description"] == "text"

    def values(c: Any) -> list[Any]:
        got = c.get(f"{SOS}/observations", params={"sensor": "s"}).json()
        return [(o["name"], o["value"]) for item in got["observations"]
                for rec in item["record"] for o in rec["output"]]

    assert values(a) == [("auto", 5.0), ("p", 1.5)]
    assert values(b) == [("auto", "five"), ("p", "b-value")]
    # Changing or deleting A's things leaves B's alone.
    _ok(a.put(f"{SOS}/features/f", json={"description": "changed"}), 200)
    assert a.delete(f"{SOS}/observations", params={"sensor": "s"}).json()["deleted"] == 2
    assert a.delete(f"{SOS}/observedProperties/{quote('p')}").status_code == 200
    assert a.delete(f"{SOS}/features/f", params={"cascade": "true"}).status_code == 200
    assert a.get(f"{SOS}/count").json() == {"sensors": 0, "features": 0,
                                            "observedProperties": 1}
    assert b.get(f"{SOS}/features/f").json()["description"] == "text"
    assert b.get(f"{SOS}/observedProperties/p").json()["type"] == "text"
    assert values(b) == [("auto", "five"), ("p", "b-value")]
    assert b.get(f"{SOS}/count").json() == {"sensors": 1, "features": 1,
                                            "observedProperties": 2}

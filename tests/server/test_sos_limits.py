"""SOS input against the limits of both stores: every field of every body, every query
parameter and every name in a path, with a NUL character (PostgreSQL cannot store one,
SQLite can) and one past its column's size, is refused with a 400 naming the field before
it reaches either store, and stores nothing; at the limit it is accepted. JSON-valued
fields (metadata, and observation items kept for message routing) are bounded in depth
and size, and the features list still answers after every refusal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from sos_helper import stored_values as _stored

from pyconnector_server.sos import validate

SOS = "/api/sos/v2.0"
NUL = "a\x00b"
NAME = 255  # every name column
UNIT = 64
REC = [{"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "temp", "value": 21.5}]}]
GOOD = {"sensor": "ts1", "record": REC}


def _seed(api: Any) -> None:
    """tf1 ⟵ ts1 (temp: quantity, status: text)."""
    assert api.post(f"{SOS}/features", json={"name": "tf1"}).json()["code"] == 201
    r = api.post(f"{SOS}/sensors", json={"name": "ts1", "feature": "tf1", "outputs": [
        {"name": "temp", "type": "quantity"}, {"name": "status", "type": "text"}]})
    assert r.json()["code"] == 201, r.text


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           app_opener: Any) -> Iterator[Any]:
    """One seeded app per store: the refusals tested here change nothing, so they share it."""
    db = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with app_opener(tmp_path_factory.mktemp("limits"), db) as api:
        _seed(api)
        yield api


@pytest.fixture
def sos(shared: Any) -> Iterator[Any]:
    yield shared
    assert shared.delete(f"{SOS}/observations", params={"feature": "tf1"}).status_code == 200


def _state(api: Any) -> Any:
    """Everything a refused request must leave as it was."""
    out = [api.get(f"{SOS}/{p}").json() for p in (
        "count", "features", "sensors", "observedProperties", "capabilities")]
    return out, _stored(api)


def _send(api: Any, method: str, path: str, body: Any = None,
          params: dict[str, str] | None = None, **kw: Any) -> Any:
    if body is not None:
        kw["content"] = orjson.dumps(body)
        kw["headers"] = {"content-type": "application/json", **kw.get("headers", {})}
    return getattr(api, method)(f"{SOS}{path}", params=params, **kw)


def _refused(r: Any, field: str | None) -> dict[str, Any]:
    """400 naming ``field``: in the body (TCUP writes answer HTTP 200) or as the status."""
    assert r.status_code in (200, 400), r.text
    body = r.json()
    assert body["code"] == 400, body
    if field is not None:
        assert body.get("field") == field, body
        assert field in body["message"], body
    return body


# -- every body field × (NUL, one past the limit) -----------------------------------------
Make = Callable[[str], Any]
# (case, method, path, body for a bad value x, the field named, the field's size or None)
BODY: list[tuple[str, str, str, Make, str, int | None]] = [
    ("feature.name", "post", "/features", lambda x: {"name": x}, "feature.name", NAME),
    ("feature.description", "post", "/features",
     lambda x: {"name": "nf", "description": x}, "feature.description", None),
    ("feature.parent", "post", "/features", lambda x: {"name": "nf", "parent": x},
     "feature.parent", NAME),
    ("feature.metadata value", "post", "/features",
     lambda x: {"name": "nf", "metadata": {"k": [{"v": x}]}}, "feature.metadata", None),
    ("feature.metadata key", "post", "/features",
     lambda x: {"name": "nf", "metadata": {x: 1}}, "feature.metadata", None),
    ("features[0].name", "post", "/features", lambda x: [{"name": x}], "features[0].name",
     NAME),
    ("features[0].description", "post", "/features",
     lambda x: [{"name": "nf", "description": x}], "features[0].description", None),
    ("PUT feature.description", "put", "/features/tf1", lambda x: {"description": x},
     "feature.description", None),
    ("PUT feature.metadata", "put", "/features/tf1", lambda x: {"metadata": {"k": x}},
     "feature.metadata", None),
    ("PUT feature.parent", "put", "/features/tf1", lambda x: {"parent": x},
     "feature.parent", NAME),
    ("sensor.name", "post", "/sensors", lambda x: {"name": x, "feature": "tf1"},
     "sensor.name", NAME),
    ("sensor.feature", "post", "/sensors", lambda x: {"name": "ns", "feature": x},
     "sensor.feature", NAME),
    ("sensor.description", "post", "/sensors",
     lambda x: {"name": "ns", "feature": "tf1", "description": x}, "sensor.description", None),
    ("sensor.metadata", "post", "/sensors",
     lambda x: {"name": "ns", "feature": "tf1", "metadata": {"k": x}}, "sensor.metadata", None),
    ("sensor.members[0]", "post", "/sensors",
     lambda x: {"name": "ns", "feature": "tf1", "type": "composite", "members": [x]},
     "sensor.members[0]", NAME),
    ("sensor.outputs[0] as a name", "post", "/sensors",
     lambda x: {"name": "ns", "feature": "tf1", "outputs": [x]}, "sensor.outputs[0].name", NAME),
    ("sensor.outputs[0].name", "post", "/sensors",
     lambda x: {"name": "ns", "feature": "tf1", "outputs": [{"name": x}]},
     "sensor.outputs[0].name", NAME),
    ("sensor.outputs[0].unit", "post", "/sensors",
     lambda x: {"name": "ns", "feature": "tf1", "outputs": [{"name": "np", "unit": x}]},
     "sensor.outputs[0].unit", UNIT),
    ("sensor.outputs[0].description", "post", "/sensors",
     lambda x: {"name": "ns", "feature": "tf1", "outputs": [{"name": "np", "description": x}]},
     "sensor.outputs[0].description", None),
    ("sensors[0].name", "post", "/sensors", lambda x: [{"name": x, "feature": "tf1"}],
     "sensors[0].name", NAME),
    ("PUT sensor.description", "put", "/sensors/ts1", lambda x: {"description": x},
     "sensor.description", None),
    ("PUT sensor.metadata", "put", "/sensors/ts1", lambda x: {"metadata": {x: x}},
     "sensor.metadata", None),
    ("PUT sensor.feature", "put", "/sensors/ts1", lambda x: {"feature": x}, "sensor.feature",
     NAME),
    ("PUT sensor.members[0]", "put", "/sensors/ts1",
     lambda x: {"type": "composite", "members": [x]}, "sensor.members[0]", NAME),
    ("PUT sensor.outputs[0].unit", "put", "/sensors/ts1",
     lambda x: {"outputs": [{"name": "np", "unit": x}]}, "sensor.outputs[0].unit", UNIT),
    ("observedProperty.name", "post", "/observedProperties", lambda x: {"name": x},
     "observedProperty.name", NAME),
    ("observedProperty.unit", "post", "/observedProperties",
     lambda x: {"name": "np", "unit": x}, "observedProperty.unit", UNIT),
    ("observedProperty.description", "post", "/observedProperties",
     lambda x: {"name": "np", "description": x}, "observedProperty.description", None),
    ("observedProperties[0].unit", "post", "/observedProperties",
     lambda x: [{"name": "np", "unit": x}], "observedProperties[0].unit", UNIT),
    ("PUT observedProperty.unit", "put", "/observedProperties/temp", lambda x: {"unit": x},
     "observedProperty.unit", UNIT),
    ("PUT observedProperty.description", "put", "/observedProperties/temp",
     lambda x: {"description": x}, "observedProperty.description", None),
    ("observations[0].sensor", "post", "/observations",
     lambda x: {"observations": [{"sensor": x, "record": REC}]}, "observations[0].sensor", NAME),
    ("observations[0].feature", "post", "/observations",
     lambda x: {"observations": [{**GOOD, "feature": x}]}, "observations[0].feature", NAME),
    ("observations[0]...output[0].name", "post", "/observations",
     lambda x: {"observations": [{"sensor": "ts1", "record": [
         {"starttime": "2024-05-01T10:00:00Z", "output": [{"name": x, "value": 1}]}]}]},
     "observations[0].record[0].output[0].name", NAME),
    ("observations[0]...output[0].value (text)", "post", "/observations",
     lambda x: {"observations": [{"sensor": "ts1", "record": [
         {"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "status", "value": x}]}]}]},
     "observations[0].record[0].output[0].value", None),
]


def _cases(table: list[Any]) -> list[Any]:
    out = []
    for case, *rest in table:
        limit = rest[-1]
        out.append(pytest.param(*rest[:-1], NUL, id=f"{case}-NUL"))
        if limit is not None:
            out.append(pytest.param(*rest[:-1], "n" * (limit + 1), id=f"{case}-{limit + 1}"))
    return out


@pytest.mark.parametrize("method, path, make, field, bad", _cases(BODY))
def test_body_field_with_nul_or_over_its_size_is_400_and_stores_nothing(
        sos: Any, method: str, path: str, make: Make, field: str, bad: str) -> None:
    before = _state(sos)
    _refused(_send(sos, method, path, make(bad)), field)
    assert _state(sos) == before


def test_bad_sensor_name_in_a_batch_is_reported_per_item(sos: Any) -> None:
    """A NUL in one item's sensor refuses that item only (it broke the batch's lookup)."""
    r = _send(sos, "post", "/observations", {"observations": [
        GOOD, {"sensor": NUL, "record": REC}, {"sensor": "n" * 256, "record": REC}]})
    body = r.json()
    assert r.status_code == 200 and body["code"] == 207, body
    assert [x["code"] for x in body["results"]] == [201, 400, 400], body
    assert [x.get("field") for x in body["results"][1:]] == [
        "observations[1].sensor", "observations[2].sensor"]
    assert _stored(sos) == 1


# -- every query parameter and path name × (NUL, one past the limit) ------------------------
QUERY: list[tuple[str, str, str, Make, str, int | None]] = [
    ("features parent", "get", "/features", lambda x: {"parent": x}, "parent", NAME),
    ("sensors feature", "get", "/sensors", lambda x: {"feature": x}, "feature", NAME),
    ("observations sensor", "get", "/observations", lambda x: {"sensor": x}, "sensor", NAME),
    ("observations feature", "get", "/observations", lambda x: {"feature": x}, "feature", NAME),
    ("observations property", "get", "/observations",
     lambda x: {"sensor": "ts1", "property": x}, "property", NAME),
    ("observations filter name", "get", "/observations",
     lambda x: {"sensor": "ts1", "filter": f"{x}=1"}, "filter", NAME),
    ("observations filter value", "get", "/observations",
     lambda x: {"sensor": "ts1", "filter": f"status='{x}'"}, "filter", None),
    ("observations filter value csv", "get", "/observations",
     lambda x: {"sensor": "ts1", "filter": f"status={x}", "format": "csv"}, "filter", None),
    ("delete sensor", "delete", "/observations", lambda x: {"sensor": x}, "sensor", NAME),
    ("delete feature", "delete", "/observations", lambda x: {"feature": x}, "feature", NAME),
    ("delete start", "delete", "/observations", lambda x: {"sensor": "ts1", "start": x},
     "start", None),
    *[(f"observations {key}", "get", "/observations",
       lambda x, key=key: {"sensor": "ts1", key: x}, key, None)
      for key in ("start", "end", "latest", "limit", "offset", "cursor", "order", "format",
                  "timeFormat")],
    *[(f"{path} {key}", "get", path, lambda x, key=key: {key: x}, key, None)
      for path in ("/features", "/sensors") for key in ("limit", "offset")],
]


@pytest.mark.parametrize("method, path, make, field, bad", _cases(QUERY))
def test_query_parameter_with_nul_or_over_its_size_is_400(
        sos: Any, method: str, path: str, make: Make, field: str, bad: str) -> None:
    before = _state(sos)
    r = _send(sos, method, path, params=make(bad))
    assert r.status_code == 400, r.text
    _refused(r, field)
    assert _state(sos) == before


PATHS = [pytest.param(kind, method, id=f"{method} {kind}")
         for kind in ("features", "sensors", "observedProperties")
         for method in ("get", "put", "delete")]


@pytest.mark.parametrize("bad", [NUL, "n" * (NAME + 1)], ids=["NUL", str(NAME + 1)])
@pytest.mark.parametrize("kind, method", PATHS)
def test_name_in_the_path_with_nul_or_over_its_size_is_400(sos: Any, kind: str, method: str,
                                                           bad: str) -> None:
    before = _state(sos)
    body = {"description": "x"} if method == "put" else None
    _refused(_send(sos, method, f"/{kind}/{quote(bad, safe='')}", body), "name")
    assert _state(sos) == before


# -- at the limit, accepted -------------------------------------------------------------------
def test_values_at_their_limits_are_accepted_and_read_back(api_any: Any) -> None:
    api = api_any
    _seed(api)
    name = "f" * NAME
    meta = {"k": "x" * (validate.JSON_MAX_BYTES - len(orjson.dumps({"k": ""})))}
    assert len(orjson.dumps(meta)) == validate.JSON_MAX_BYTES
    r = _send(api, "post", "/features", {"name": name, "parent": "tf1", "metadata": meta})
    assert r.json()["code"] == 201, r.text
    got = api.get(f"{SOS}/features/{name}").json()
    assert got["metadata"] == meta and got["parent"] == "tf1"
    r = _send(api, "post", "/sensors", {"name": "s" * NAME, "feature": name, "outputs": [
        {"name": "p" * NAME, "unit": "u" * UNIT, "type": "text"}]})
    assert r.json()["code"] == 201, r.text
    assert api.get(f"{SOS}/sensors/{'s' * NAME}").json()["outputs"] == [
        {"name": "p" * NAME, "type": "text", "unit": "u" * UNIT}]
    r = _send(api, "put", "/observedProperties/temp", {"unit": "v" * UNIT})
    assert r.json()["code"] == 200, r.text
    assert api.get(f"{SOS}/observedProperties/temp").json()["unit"] == "v" * UNIT
    r = _send(api, "post", "/observations", {"observations": [{
        "sensor": "s" * NAME, "feature": name, "record": [{
            "starttime": "2024-05-01T10:00:00Z", "output": [{"name": "p" * NAME,
                                                              "value": "t" * 10_000}]}]}]})
    assert r.json()["code"] == 201, r.text
    r = api.get(f"{SOS}/observations", params={"sensor": "s" * NAME, "property": "p" * NAME,
                                               "filter": f"{'p' * NAME}={'t' * 10_000}"})
    assert r.status_code == 200, r.text
    assert r.json()["observations"][0]["record"][0]["output"][0]["value"] == "t" * 10_000
    # A name of the largest size that does not exist is looked up, not refused.
    assert api.get(f"{SOS}/features", params={"parent": "z" * NAME}).status_code == 404
    assert api.get(f"{SOS}/sensors/{'z' * NAME}").status_code == 404


# -- depth and size of JSON-valued fields ---------------------------------------------------
def _nested(levels: int) -> str:
    """A JSON object nested ``levels`` deep (the object itself is level 1)."""
    return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)


METADATA = [
    pytest.param("post", "/features", '{"name": "deep", "metadata": %s}', "feature.metadata",
                 id="feature create"),
    pytest.param("put", "/features/tf1", '{"metadata": %s}', "feature.metadata",
                 id="feature update"),
    pytest.param("post", "/sensors", '{"name": "deep", "feature": "tf1", "metadata": %s}',
                 "sensor.metadata", id="sensor create"),
    pytest.param("put", "/sensors/ts1", '{"metadata": %s}', "sensor.metadata",
                 id="sensor update"),
    pytest.param("post", "/features", '[{"name": "deep", "metadata": %s}]',
                 "features[0].metadata", id="features batch"),
]


@pytest.mark.parametrize("levels", [validate.JSON_MAX_DEPTH + 1, 254, 255, 1_000, 100_000])
@pytest.mark.parametrize("method, path, template, field", METADATA)
def test_metadata_nested_too_deep_is_400_and_lists_still_answer(
        sos: Any, method: str, path: str, template: str, field: str, levels: int) -> None:
    before = _state(sos)
    r = getattr(sos, method)(f"{SOS}{path}", content=template % _nested(levels),
                             headers={"content-type": "application/json"})
    if levels < 1024:  # the JSON parser itself stops at 1,024 levels, naming no field
        body = _refused(r, field)
        assert str(validate.JSON_MAX_DEPTH) in body["message"], body
    else:
        body = _refused(r, None)
        assert "depth" in body["message"], body
    assert _state(sos) == before
    for p in ("/features", "/features/tf1", "/sensors", "/sensors/ts1"):
        assert sos.get(f"{SOS}{p}").status_code == 200


@pytest.mark.parametrize("method, path, template, field", METADATA)
def test_metadata_at_the_depth_limit_is_stored_and_read_back(
        api_any: Any, method: str, path: str, template: str, field: str) -> None:
    _seed(api_any)
    deep = _nested(validate.JSON_MAX_DEPTH)
    r = getattr(api_any, method)(f"{SOS}{path}", content=template % deep,
                                 headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["code"] in (200, 201), r.text
    name = "deep" if method == "post" else path.rsplit("/", 1)[1]
    kind = "features" if "feature" in field else "sensors"
    for url in (f"{SOS}/{kind}/{name}", f"{SOS}/{kind}"):
        r = api_any.get(url)
        assert r.status_code == 200, r.text
    assert orjson.loads(deep) == api_any.get(f"{SOS}/{kind}/{name}").json()["metadata"]


@pytest.mark.parametrize("method, path, template, field", METADATA)
def test_metadata_over_the_size_limit_is_400(sos: Any, method: str, path: str, template: str,
                                             field: str) -> None:
    meta = {"k": "x" * (validate.JSON_MAX_BYTES - len(orjson.dumps({"k": ""})) + 1)}
    before = _state(sos)
    r = getattr(sos, method)(f"{SOS}{path}", content=template % orjson.dumps(meta).decode(),
                             headers={"content-type": "application/json"})
    body = _refused(r, field)
    assert f"{validate.JSON_MAX_BYTES}" in body["message"], body
    assert _state(sos) == before


@pytest.mark.parametrize("routing", ["mq", "both"])
def test_observation_kept_for_routing_is_bounded_in_depth(sos: Any, routing: str) -> None:
    """Items routed to message routing are kept as sent: their nesting is bounded too."""
    def item(levels: int) -> str:  # the item is level 1; "x" holds the rest
        return ('{"sensor": "ts1", "record": ' + orjson.dumps(REC).decode() + ', "x": '
                + _nested(levels - 1) + "}")

    headers = {"content-type": "application/json", "x-routing": routing}
    ok = item(validate.JSON_MAX_DEPTH)
    deep = item(validate.JSON_MAX_DEPTH + 1)
    mr = "/MessageRouting/v2.0"
    key = sos.get(f"{mr}/routingKey").json()["routingKey"]
    with sos.client.websocket_connect(f"{mr}/ws", headers=sos.headers()) as ws:
        ws.send_json({"action": "subscribe", "exchange": "Direct.Exchange", "topic": key})
        assert ws.receive_json()["type"] == "subscribed"
        r = sos.post(f"{SOS}/observations", content=f'{{"observations": [{ok}, {deep}]}}',
                     headers=headers)
        body = r.json()
        assert body["code"] == 207, body
        assert body["results"][1]["field"] == "observations[1]", body
        # Only the accepted item was routed, as it was sent.
        assert ws.receive_json()["message"] == {"observations": [orjson.loads(ok)]}

"""The published OpenAPI document: valid, complete, and true to the server.

Valid by an OpenAPI validator; every operation describes its request body (POST/PUT),
its success answer and its security; no operation advertises FastAPI's 422, which the
platform never sends. Then, for every operation of the document - so a new service's
routes are covered the day they are added - what the document promises about errors
holds: no key is a 401, a body with an unknown field a 400 naming it, both in the one
error shape.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from pyconnector_server.app import create_app
from pyconnector_server.settings import Settings

SPEC = create_app(Settings.load({"data_dir": "unused"}, environ={})).openapi()
OPERATIONS = [(method, path, op) for path, item in SPEC["paths"].items()
              for method, op in item.items()]
IDS = [f"{m.upper()} {p}" for m, p, _ in OPERATIONS]
PUBLIC = {"/health"}
ERROR_KEYS = {"code", "message", "field", "line", "key"}
# POSTs that name an action on an object and take no body.
ACTIONS = ("/key", "/purge", "/start", "/stop", "/restart", "/cancel", "/pause", "/resume",
           "/instances", "/initiate", "/abort", "/recover")
# PUTs that set a state named in the query and take no body (TCUP's PUT /file/status).
NO_BODY = {("put", "/api/dls/file/status")}


def _described(schema: dict[str, Any]) -> bool:
    """Whether a schema says something (FastAPI's default for ``-> Any`` is ``{}``)."""
    return bool({"$ref", "type", "anyOf", "oneOf", "allOf", "items"} & set(schema))


def test_the_document_is_valid_openapi() -> None:
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.")


def test_the_security_schemes_are_the_platform_headers() -> None:
    schemes = SPEC["components"]["securitySchemes"]
    assert {(s["in"], s["name"]) for s in schemes.values()} == {
        ("header", "x-api-key"), ("header", "x-dls-key")}


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=IDS)
def test_every_operation_is_described(method: str, path: str, op: dict[str, Any]) -> None:
    responses = op["responses"]
    assert "422" not in responses, "the platform answers 400, never 422"
    assert op.get("summary"), "a summary says what the operation does"
    successes = {code: r for code, r in responses.items() if code.startswith("2")}
    assert successes, "a success answer is documented"
    for code, response in successes.items():
        content = response.get("content")
        assert content, f"{code} says what it answers"
        for media, body in content.items():
            assert _described(body.get("schema", {})), f"{code} {media}: a described schema"
    for code, response in responses.items():
        if code[0] in "45":
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, code
    if method in ("post", "put") and path not in PUBLIC:
        body = op.get("requestBody")
        if not (method == "post" and path.endswith(ACTIONS)) and (method, path) not in NO_BODY:
            assert body and body["required"], "the body is described"
            for media, content in body["content"].items():
                assert _described(content["schema"]), media
    if path not in PUBLIC:
        assert op["security"] and "ApiKey" in op["security"][0]
        assert "401" in responses
    if path.startswith("/api/dls/") and "/admin/" not in path:
        assert "DlsKey" in op["security"][0]


def test_the_routing_header_is_published() -> None:
    op = SPEC["paths"]["/api/sos/v2.0/observations"]["post"]
    header = next(p for p in op["parameters"] if p["in"] == "header")
    assert header["name"] == "x-routing"
    assert header["schema"]["enum"] == ["db", "mq", "both"]


def test_body_models_refuse_unknown_fields_in_every_json_body() -> None:
    """Every typed JSON body forbids what it does not know (the fast-path observation
    body excepted: TCUP clients send more than it reads, and it says so)."""
    schemas = SPEC["components"]["schemas"]
    for method, path, op in OPERATIONS:
        content = op.get("requestBody", {}).get("content", {}).get("application/json")
        if content is None:
            continue
        refs = re.findall(r"#/components/schemas/(\w+)", repr(content["schema"]))
        assert refs, (method, path)
        for name in refs:
            expected = name != "ObservationsIn"
            assert (schemas[name].get("additionalProperties") is False) is expected, name


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _check_error(r: Any, status: int, where: str) -> dict[str, Any]:
    body = r.json()
    assert r.status_code in (status, 200), (where, r.status_code, r.text)  # SOS: 200+code
    assert body["code"] == status, (where, body)
    assert {"code", "message"} <= set(body) <= ERROR_KEYS, (where, body)
    assert isinstance(body["message"], str) and body["message"], where
    return body


@pytest.mark.parametrize(("method", "path", "op"),
                         [o for o in OPERATIONS if o[1] not in PUBLIC],
                         ids=[i for i, o in zip(IDS, OPERATIONS) if o[1] not in PUBLIC])
def test_every_operation_answers_401_without_a_key(make_app: Any, method: str, path: str,
                                                   op: dict[str, Any]) -> None:
    api = make_app()
    r = api.client.request(method, _fill(path), json={})
    body = _check_error(r, 401, f"{method} {path}")
    assert r.status_code == 401  # authentication keeps its status, even on SOS writes
    assert "API key" in body["message"]


JSON_BODIES = [(m, p, op) for m, p, op in OPERATIONS
               if "application/json" in op.get("requestBody", {}).get("content", {})
               and p != "/api/sos/v2.0/observations"]


@pytest.mark.parametrize(("method", "path", "op"), JSON_BODIES,
                         ids=[f"{m.upper()} {p}" for m, p, _ in JSON_BODIES])
def test_an_unknown_body_field_is_a_400_naming_it(make_app: Any, method: str, path: str,
                                                  op: dict[str, Any]) -> None:
    from dls_helper import Dls

    api = make_app()
    dls = Dls(api, "alice")
    params = {p["name"]: "x" for p in op.get("parameters", []) if p["in"] == "query"
              and p.get("required")}
    r = api.client.request(method, _fill(path), params=params, json={"bogus-field": 1},
                           headers={**api.headers(), **dls.headers("alice")})
    body = _check_error(r, 400, f"{method} {path}")
    # The first problem may be a required field the body lacks; then it is named.
    assert body["field"].endswith(("bogus-field", *_required(op))), body
    assert body["message"].startswith(body["field"] + ": "), body


def _required(op: dict[str, Any]) -> tuple[str, ...]:
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    refs = re.findall(r"#/components/schemas/(\w+)", repr(schema))
    names: list[str] = []
    for ref in refs:
        names += SPEC["components"]["schemas"][ref].get("required", [])
    return tuple(names)


def test_a_bad_field_deep_in_a_body_is_named_by_its_path(make_app: Any) -> None:
    api = make_app()
    sos = "/api/sos/v2.0"
    r = api.post(f"{sos}/features", json={"name": "f", "location": {"lat": 91, "lon": 0}})
    assert r.json() == {"code": 400, "field": "feature.location.lat",
                        "message": "feature.location.lat: must be at most 90"}
    r = api.post(f"{sos}/sensors", json=[
        {"name": "s1", "feature": "f"},
        {"name": "s2", "feature": "f", "outputs": ["temp", {"name": "t", "colour": "red"}]}])
    results = r.json()["results"]
    assert results[1]["field"] == "sensors[1].outputs[1].colour"
    assert results[1]["message"] == "sensors[1].outputs[1].colour: unknown field"
    # The first item failed on its own (no feature f): each item is reported in its place.
    assert results[0]["code"] == 404
    assert api.get(f"{sos}/sensors").json() == []
    r = api.put(f"{sos}/observedProperties/x", json={"type": "colour"})
    assert r.json()["field"] == "observedProperty.type"
    assert "quantity" in r.json()["message"]


def test_a_checked_body_keeps_the_rules_of_the_query_checks(make_app: Any) -> None:
    """A name in a body obeys the same rule, in the same words, as in a path."""
    api = make_app()
    sos = "/api/sos/v2.0"
    r = api.post(f"{sos}/features", json={"name": "a/b"})
    assert r.json()["message"] == "feature.name: must not contain '/' or control characters"
    r = api.post(f"{sos}/features", json={"name": 5})
    assert r.json()["message"] == "feature.name: expected a string, got int"
    r = api.post(f"{sos}/features", json={"name": "f", "metadata": {"k": "\x00"}})
    assert r.json()["message"] == "feature.metadata: must not contain NUL characters"

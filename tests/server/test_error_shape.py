"""One error shape for every failure, across route families:
``{"code": int, "message": str[, "field": str][, "line": int][, "key": str]}``, with
``code`` equal to the HTTP status wherever the status is not TCUP's
200-with-the-code-in-the-body. ``key`` is TCUP's message key: every Data Lake error has
one, other services' errors none."""

from __future__ import annotations

from typing import Any

SOS = "/api/sos/v2.0"
CSV = {"content-type": "text/csv"}
DLS = "/api/dls"
OPTIONAL = {"field": str, "line": int, "key": str}  # key: TCUP's message key (DLS)


def _check_shape(body: Any, where: str) -> None:
    assert isinstance(body, dict), where
    assert {"code", "message"} <= set(body) <= {"code", "message", *OPTIONAL}, (where, body)
    assert type(body["code"]) is int and 400 <= body["code"] <= 599, (where, body)
    assert isinstance(body["message"], str) and body["message"].strip(), (where, body)
    for key, kind in OPTIONAL.items():
        if key in body:
            assert type(body[key]) is kind and body[key] != "", (where, body)


def test_every_error_has_the_one_shape(make_app: Any) -> None:
    api = make_app(max_body_bytes=1000, max_upload_bytes=5000)
    assert api.post(f"{SOS}/features", json={"name": "tf1"}).json()["code"] == 201
    assert api.post(f"{SOS}/sensors", json={"name": "ts1", "feature": "tf1",
                                            "outputs": ["temp"]}).json()["code"] == 201
    c, key = api.client, {"x-api-key": api.api_key}
    big_csv = "time,sensor,temp\n" + "2024-05-01T10:00:00Z,ts1,1\n" * 300
    bad_obs = {"observations": [{"sensor": "ts1", "record": [
        {"starttime": "yesterday", "output": [{"name": "temp", "value": 1}]}]}]}

    # (label, response, HTTP status, body code, field, line); None: not checked/absent.
    cases: list[tuple[str, Any, int, int, str | None, int | None]] = [
        # SOS GET/DELETE: real statuses.
        ("sos get 404", api.get(f"{SOS}/features/nope"), 404, 404, None, None),
        ("sos delete 404", api.delete(f"{SOS}/sensors/nope"), 404, 404, None, None),
        ("sos delete 409", api.delete(f"{SOS}/features/tf1"), 409, 409, None, None),
        ("sos query 404", api.get(f"{SOS}/observations", params={"sensor": "nope"}),
         404, 404, None, None),
        ("sos delete 400", api.delete(f"{SOS}/observations"), 400, 400, "sensor", None),
        # SOS POST/PUT: HTTP 200, the real code in the body.
        ("sos post 400", api.post(f"{SOS}/features", json={"name": 5}),
         200, 400, "feature.name", None),
        ("sos post 409", api.post(f"{SOS}/features", json={"name": "tf1"}),
         200, 409, "feature.name", None),
        ("sos put 404", api.put(f"{SOS}/sensors/nope", json={}), 200, 404, None, None),
        ("sos post malformed", api.post(f"{SOS}/features", content=b"{",
                                        headers={"content-type": "application/json"}),
         200, 400, None, None),
        ("sos observations 400", api.post(f"{SOS}/observations", json={"observations": 3}),
         200, 400, "observations", None),
        ("sos csv 400", api.post(f"{SOS}/observations/csv",
                                 content="time,sensor,temp\n2024-05-01T10:00:00Z,ts1,x\n",
                                 headers=CSV), 200, 400, "temp", 2),
        ("sos csv 404", api.post(f"{SOS}/observations/csv",
                                 content="time,sensor,temp\n2024-05-01T10:00:00Z,no,1\n",
                                 headers=CSV), 200, 404, "sensor", 2),
        ("sos csv header", api.post(f"{SOS}/observations/csv", content="time,temp\n",
                                    headers=CSV), 200, 400, "sensor", 1),
        # Authentication: 401 everywhere, writes included.
        ("401 get", c.get(f"{SOS}/count"), 401, 401, None, None),
        ("401 post", c.post(f"{SOS}/features", json={"name": "x"}), 401, 401, None, None),
        ("401 unknown key", c.put(f"{SOS}/features/tf1", json={},
                                  headers={"x-api-key": "f" * 64}), 401, 401, None, None),
        ("401 csv", c.post(f"{SOS}/observations/csv", content="time,sensor,temp\n",
                           headers=CSV), 401, 401, None, None),
        # Size: 413, by Content-Length and for JSON bodies over their own limit.
        ("413 json", api.post(f"{SOS}/features", json={"name": "x", "description": "y" * 2000}),
         413, 413, None, None),
        ("413 csv", api.post(f"{SOS}/observations/csv", content=big_csv, headers=CSV),
         413, 413, None, None),
        # Framework failures: unknown route, method not allowed.
        ("unknown route", c.get("/nope"), 404, 404, None, None),
        ("unknown sos route", api.get(f"{SOS}/nope"), 404, 404, None, None),
        ("unknown sos route post", api.post(f"{SOS}/nope", json={}), 404, 404, None, None),
        ("405", api.delete(f"{SOS}/count"), 405, 405, None, None),
        ("405 patch", c.patch(f"{SOS}/features/tf1", headers=key), 405, 405, None, None),
        ("405 health", c.post("/health"), 405, 405, None, None),
        # Query-parameter validation, by FastAPI and by our own checks.
        ("limit=abc (list)", api.get(f"{SOS}/features", params={"limit": "abc"}),
         400, 400, "limit", None),
        ("offset=-1 (list)", api.get(f"{SOS}/sensors", params={"offset": "-1"}),
         400, 400, "offset", None),
        ("limit huge (list)", api.get(f"{SOS}/sensors", params={"limit": "9" * 30}),
         400, 400, "limit", None),
        ("cascade=maybe", api.delete(f"{SOS}/features/tf1", params={"cascade": "maybe"}),
         400, 400, "cascade", None),
        ("limit=abc (observations)", api.get(f"{SOS}/observations",
                                             params={"sensor": "ts1", "limit": "abc"}),
         400, 400, "limit", None),
        ("latest huge", api.get(f"{SOS}/observations",
                                params={"sensor": "ts1", "latest": "9" * 30}),
         400, 400, "latest", None),
        ("order", api.get(f"{SOS}/observations", params={"sensor": "ts1", "order": "up"}),
         400, 400, "order", None),
        ("format", api.get(f"{SOS}/observations", params={"sensor": "ts1", "format": "xml"}),
         400, 400, "format", None),
        ("timeFormat", api.get(f"{SOS}/observations",
                               params={"sensor": "ts1", "timeFormat": "roman"}),
         400, 400, "timeFormat", None),
        ("start", api.get(f"{SOS}/observations", params={"sensor": "ts1", "start": "never"}),
         400, 400, "start", None),
        ("filter", api.get(f"{SOS}/observations", params={"sensor": "ts1", "filter": "temp"}),
         400, 400, "filter", None),
        ("cursor", api.get(f"{SOS}/observations", params={"sensor": "ts1", "cursor": "!!"}),
         400, 400, "cursor", None),
        ("forged cursor", api.get(f"{SOS}/observations",
                                  params={"sensor": "ts1", "cursor": "OTk5OTk5OTk5OTk5OTk5"
                                          "OTk5OTk5Ojk5OTk5OTk5OTk5OTk5OTk5OTk5OTk"}),
         400, 400, "cursor", None),
        ("x-routing", api.post(f"{SOS}/observations", json={"observations": []},
                               headers={"x-routing": "pigeon"}), 200, 400, "x-routing", None),
    ]
    dls_key = {"x-dls-key": api.post(f"{DLS}/admin/users", json={"user": "ann"}).json()["dlsKey"]}
    dls_cases: list[tuple[str, Any, int, int, str | None, int | None]] = [
        ("dls 401", c.get(f"{DLS}/catalog"), 401, 401, None, None),
        ("dls 404", api.get(f"{DLS}/file", params={"file-uri": "x/ann/f"}, headers=dls_key),
         404, 404, "file-uri", None),
        ("dls 400", api.get(f"{DLS}/catalog", params={"sort": "up"}, headers=dls_key),
         400, 400, "sort", None),
        ("dls upload too big", api.post(f"{DLS}/file", params={"filename": "f"},
                                        content=b"x" * 5001, headers=dls_key),
         400, 400, None, None),
        ("dls 405", c.patch(f"{DLS}/file", headers=key), 405, 405, None, None),
        ("dls unknown route", api.get(f"{DLS}/nope"), 404, 404, None, None),
    ]
    for label, r, *_ in dls_cases:  # the Data Lake's carry TCUP's message key
        assert isinstance(r.json().get("key"), str), (label, r.json())
    for label, r, *_ in cases:  # the others none
        assert "key" not in r.json(), (label, r.json())
    cases += dls_cases
    seen = set()
    for label, r, status, code, field, line in cases:
        assert label not in seen
        seen.add(label)
        assert r.status_code == status, (label, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json"), label
        body = r.json()
        _check_shape(body, label)
        assert body["code"] == code, (label, body)
        if status != 200:
            assert body["code"] == r.status_code, (label, body)
        assert body.get("field") == field, (label, body)
        assert body.get("line") == line, (label, body)

    # A batch answers per item: each failed item has the same shape, plus its index.
    r = api.post(f"{SOS}/observations", json=bad_obs)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"code", "message", "field", "results"}
    _check_shape({k: v for k, v in body.items() if k != "results"}, "observation batch")
    assert body["code"] == 400 and body["field"] == "observations[0].record[0].starttime"
    for item in body["results"]:
        assert type(item.pop("index")) is int
        _check_shape(item, "observation batch item")
    r = api.post(f"{SOS}/features", json=[{"name": "ok"}, {"name": "a/b"}])
    body = r.json()
    assert body["code"] == 207 and [x["code"] for x in body["results"]] == [201, 400]
    failed = body["results"][1]
    assert failed.pop("index") == 1
    _check_shape(failed, "feature batch item")
    assert failed["field"] == "features[1].name"


# Every router's operations, read from the OpenAPI document: unauthenticated, then with the
# tenant's key on names and ids that do not exist and with an unknown body field. Each
# failure has the one shape, whichever service answers.
_PARAM_VALUES = {"integer": "999999", "number": "999999"}
_PUBLIC = {"/health", "/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in {"get", "post", "put", "delete", "patch"} and path not in _PUBLIC:
                ops.append((path, method, op))
    return ops


def _concrete(path: str, op: dict[str, Any]) -> str:
    kinds = {p["name"]: p.get("schema", {}).get("type", "string")
             for p in op.get("parameters", []) if p.get("in") == "path"}
    for name, kind in kinds.items():
        path = path.replace("{" + name + "}", _PARAM_VALUES.get(kind, "nope404"))
    return path


def _error(r: Any) -> dict[str, Any] | None:
    """The error body of ``r``, or None if it did not fail (SOS writes: 200 + code)."""
    if not r.headers.get("content-type", "").startswith("application/json"):
        assert r.status_code < 400, (r.status_code, r.text[:200])
        return None
    body = r.json()
    if r.status_code >= 400:
        return body
    if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] >= 400:
        return body
    return None


def test_every_router_fails_in_the_one_shape(make_app: Any) -> None:
    api = make_app()
    spec = api.client.get("/openapi.json").json()
    ops = _operations(spec)
    prefixes = {"/" + "/".join(p.strip("/").split("/")[:2]) for p, _, _ in ops}
    failed_by_prefix: dict[str, int] = dict.fromkeys(prefixes, 0)
    for path, method, op in ops:
        url = _concrete(path, op)
        label = f"{method.upper()} {path}"
        prefix = "/" + "/".join(path.strip("/").split("/")[:2])
        if op.get("security") != []:
            r = api.client.request(method, url)
            assert r.status_code == 401, (label, r.status_code, r.text[:300])
            _check_shape(r.json(), label + " (no key)")
        if "text/event-stream" in str(op.get("responses", {})):
            continue  # a stream that exists would not end; its refusals are checked above
        body = op.get("requestBody", {}).get("content", {})
        kw: dict[str, Any] = {}
        if "application/json" in body:
            kw["json"] = {"surely_not_a_field": 1}
        r = api.client.request(method, url, headers={"x-api-key": api.api_key}, **kw)
        assert r.status_code < 500, (label, r.status_code, r.text[:300])
        err = _error(r)
        if err is not None:
            _check_shape({k: v for k, v in err.items() if k != "results"}, label)
            failed_by_prefix[prefix] += 1
    # Every service refused something in the one shape (nothing vacuous).
    assert all(failed_by_prefix.values()), failed_by_prefix
    assert prefixes >= {"/api/sos", "/api/dls", "/MessageRouting/v2.0", "/TaskService/v1.0",
                        "/WorkflowService/v1.0"}, prefixes

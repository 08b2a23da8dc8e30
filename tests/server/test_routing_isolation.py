"""Tenant isolation on every Message Routing operation that names an exchange, a queue or a
rule: another tenant's objects look like they do not exist (404 in the platform's one error
shape, the same answer as for a name nobody has, never 403 and never their data), and
nothing of theirs changes. On the embedded router and on RabbitMQ.

The operations with a path parameter are read from the app's OpenAPI document, so a route
added under ``/MessageRouting/v2.0`` is probed the day it lands (a path parameter this file
does not know fails the test until someone says which object it names)."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import need_service, wait_for

from pyconnector_server.app import create_app
from pyconnector_server.auth import ensure_tenant
from pyconnector_server.db import tenant
from pyconnector_server.settings import Settings

MR = "/MessageRouting/v2.0"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
BROKERS = ["memory", "amqp"]
MISSING = "nobody-has-this"  # a name no tenant has
MISSING_ID = 987654  # a RuleID no tenant has (ids are global: B's are never A's)

# What each path parameter names, as a placeholder :func:`_fill` replaces.
PARAMS = {"exchangeName": "{ex}", "queue": "{q}", "rule_id": "{rid}"}
# Bodies for the operations that take one (a body that is fine for B's own objects, so
# the only thing wrong is whose object the path names).
BODIES = {
    ("PUT", "/routingRules/{rule_id}"): {"RuleDescription": "taken over"},
    ("POST", "/queues/{queue}/bindings"): {"exchange": "{exB}", "topic": "#"},
}


def _named_operations() -> list[tuple[str, str]]:
    """(method, path under MR) of every operation of the document with a path parameter."""
    spec = create_app(Settings.load({"data_dir": "unused"}, environ={})).openapi()
    out = []
    for path, ops in spec["paths"].items():
        if not path.startswith(MR):
            continue
        for method, op in ops.items():
            if any(p["in"] == "path" for p in op.get("parameters", [])):
                out.append((method.upper(), path[len(MR):]))
    return sorted(out)


NAMED = _named_operations()


@dataclasses.dataclass
class World:
    """One app (one broker) with tenants A and B, each owning routing objects."""

    api: Any  # the app, sending A's key
    b: dict[str, str]  # B's headers
    names: dict[str, str]  # placeholder → A's and B's names, ids and routing keys
    tenant_ids: tuple[int, int]

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> Any:
        return self.api.client.request(method, f"{MR}{path}", json=body,
                                       headers=headers or self.b)

    def as_a(self, method: str, path: str, body: Any = None) -> Any:
        return self.request(method, path, body, self.api.headers())


def _fill(template: Any, names: dict[str, str]) -> Any:
    """``template`` with each ``{placeholder}`` (in keys, strings, nested) replaced."""
    if isinstance(template, str):
        for k, v in names.items():
            template = template.replace(f"{{{k}}}", v)
        return template
    if isinstance(template, dict):
        return {_fill(k, names): _fill(v, names) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, names) for v in template]
    return template


def _ok(r: Any) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _rule(name: str, key: str, out_exchange: str, topic: str, **params: Any) -> dict[str, Any]:
    """A rule from the tenant's direct exchange (routing key ``key``) to ``out_exchange``."""
    return {"RuleName": name, "RuleDescription": "isolation", "parallelismFactor": "1",
            "input": {"type": "Direct", "DirectExchange": "Direct.Exchange",
                      "RoutingKey": key, "MQName": ""},
            "params": [{"name": k, "value": v} for k, v in params.items()],
            "output": {"TopicExchange": out_exchange, "Topic": topic}}


def _item(sensor: str, value: float) -> dict[str, Any]:
    return {"sensor": sensor, "feature": "f1", "record": [
        {"starttime": "2024-05-01T10:00:00Z", "output": [{"name": "temp", "value": value}]}]}


def _populate(api: Any, headers: dict[str, str], tag: str) -> dict[str, str]:
    """A tenant's exchanges (topic + fanout), a queue bound to the topic one holding two
    messages, a running rule whose output reaches the queue (one message through it), and
    a stopped rule. Names are unique per run: RabbitMQ is shared with other test runs."""
    u = _uid()
    ex, fan, q = f"ex{tag}-{u}", f"fan{tag}-{u}", f"q{tag}-{u}"

    def post(path: str, body: Any = None) -> dict[str, Any]:
        return _ok(api.client.post(f"{MR}{path}", json=body, headers=headers))

    def get(path: str) -> Any:
        return _ok(api.client.get(f"{MR}{path}", headers=headers))

    post("/topicExchanges", {"exchangeName": ex, "type": "topic"})
    post("/topicExchanges", {"exchangeName": fan, "type": "fanout"})
    post("/queues", {"name": q, "maxLength": 100})
    post(f"/queues/{q}/bindings", {"exchange": ex, "topic": "a.#"})
    key = get("/routingKey")["routingKey"]
    rid = post("/routingRules", _rule(f"r{tag}", key, ex, "a.rule",
                                      sensorID="node*"))["RuleID"]
    stopped = post("/routingRules", _rule(f"idle{tag}", key, fan, "x"))["RuleID"]
    post(f"/routingChannel/{rid}/start")
    post("/publish", {"exchange": ex, "topic": "a.one", "message": {"tenant": tag, "n": 1}})
    post("/publish", {"queue": q, "message": {"tenant": tag, "n": 2}})
    post("/publish", {"message": _item("node1", 1.0)})  # through the running rule
    # Settle before any snapshot: the rule's output reached the queue, its counts flushed.
    wait_for(f"{tag}'s rule to route", lambda: get(f"/routingRules/{rid}")["counts"] == {
        "in": 1, "matched": 1, "out": 1} and get(f"/queues/{q}")["messages"] == 3)
    return {"ex": ex, "fan": fan, "q": q, "rid": str(rid), "stopped": str(stopped), "key": key}


def _snapshot(w: World) -> dict[str, Any]:
    """All either tenant can see of its routing objects, and every binding in the store."""
    out: dict[str, Any] = {}
    for who, h in (("A", w.api.headers()), ("B", w.b)):
        out[who] = {kind: _ok(w.request("GET", f"/{kind}", headers=h))
                    for kind in ("topicExchanges", "queues", "routingRules")}
        ex = w.names["ex" if who == "A" else "exB"]
        out[who]["topics"] = _ok(w.request("GET", f"/topicExchanges/{ex}/topics", headers=h))
    owned = w.api.app.state.routing.store.owned()
    out["bindings"] = sorted((o.tenant_id, o.name, o.exchange, o.topic)
                             for o in owned if o.kind == "binding")
    return out


def _check_snapshot_is_meaningful(w: World, snap: dict[str, Any]) -> None:
    a = snap["A"]
    assert [e["exchangeName"] for e in a["topicExchanges"]] == sorted(
        [w.names["ex"], w.names["fan"]])
    assert [(q["name"], q["messages"]) for q in a["queues"]] == [(w.names["q"], 3)]
    assert [(r["RuleID"], r["Status"], r["counts"]["out"]) for r in a["routingRules"]] == [
        (int(w.names["rid"]), "Running", 1), (int(w.names["stopped"]), "Created", 0)]
    assert a["topics"] == ["a.rule"]
    ta, tb = w.tenant_ids
    assert (ta, w.names["q"], w.names["ex"], "a.#") in snap["bindings"]
    assert (tb, w.names["qB"], w.names["exB"], "a.#") in snap["bindings"]


@pytest.fixture(scope="module", params=BROKERS)
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 app_opener: Any) -> Iterator[tuple[World, dict[str, Any]]]:
    """Two populated tenants on one app per broker, shared by the module: every test that
    uses them asserts that neither tenant's objects changed, so sharing is safe."""
    settings = {}
    if request.param == "amqp":
        need_service("RabbitMQ", "127.0.0.1", 5672)
        settings["broker"] = AMQP
    with app_opener(tmp_path_factory.mktemp(f"mr-{request.param}"), "", **settings) as api:
        w = _world(api)
        snap = _snapshot(w)
        _check_snapshot_is_meaningful(w, snap)
        yield w, snap
        for h in (w.api.headers(), w.b):  # leave nothing on a shared RabbitMQ
            for r in _ok(w.request("GET", "/routingRules", headers=h)):
                w.request("DELETE", f"/routingRules/{r['RuleID']}", headers=h)
            for q in _ok(w.request("GET", "/queues", headers=h)):
                w.request("DELETE", f"/queues/{q['name']}", headers=h)
            for e in _ok(w.request("GET", "/topicExchanges", headers=h)):
                w.request("DELETE", f"/topicExchanges/{e['exchangeName']}", headers=h)


def _skip_tenant_ids(api: Any) -> None:
    """Start this app's next tenant ids at a random number. RabbitMQ is shared by every
    app of every test run, each with a database whose ids start at 1, and a tenant's
    broker names are ``t<id>.<name>`` (a running rule's queue ``t<id>.rule.<RuleID>``):
    two apps' tenant 2 would consume each other's rule queues."""
    with api.app.state.db.write() as conn:
        conn.execute(sa.insert(tenant).values(id=random.randrange(10**6, 10**9),
                                              name=f"gap-{_uid()}", created_ms=0))


def _world(api: Any) -> World:
    _skip_tenant_ids(api)
    a_name, b_name = f"a-{_uid()}", f"other-{_uid()}"
    a = dataclasses.replace(api, api_key=api.new_key(a_name))
    b = {"x-api-key": api.new_key(b_name)}
    names = _populate(a, a.headers(), "A")
    names.update({f"{k}B": v for k, v in _populate(a, b, "B").items()})
    db = api.app.state.db
    return World(a, b, names, (ensure_tenant(db, a_name).id, ensure_tenant(db, b_name).id))


@pytest.fixture
def world(shared_world: tuple[World, dict[str, Any]]) -> Iterator[World]:
    w, snap = shared_world
    yield w
    assert _snapshot(w) == snap


def _missing(names: dict[str, str]) -> dict[str, str]:
    """``names`` with A's objects replaced by ones nobody has."""
    return {**names, "ex": MISSING, "fan": MISSING, "q": MISSING, "rid": str(MISSING_ID),
            "stopped": str(MISSING_ID)}


def _as_if_missing(w: World, answer: dict[str, Any], missing_answer: dict[str, Any]) -> None:
    """B's answer about A's object is the answer about an object nobody has (A's names
    and RuleIDs put back as the missing ones)."""
    text = json.dumps(answer)
    for k in ("ex", "fan", "q"):
        text = text.replace(w.names[k], MISSING)
    for k in ("rid", "stopped"):
        text = re.sub(rf"\b{w.names[k]}\b", str(MISSING_ID), text)
    assert json.loads(text) == missing_answer


def _not_found(body: dict[str, Any]) -> None:
    """The platform's one error shape, a 404, saying "not found" and nothing more."""
    assert body["code"] == 404, body
    assert set(body) <= {"code", "message", "field"}, body
    assert isinstance(body["message"], str) and "not found" in body["message"], body


# -- the operations ---------------------------------------------------------------------------
def test_the_probed_operations_are_read_from_the_document() -> None:
    assert NAMED, "no Message Routing operation with a path parameter in the document"
    known = {("DELETE", "/topicExchanges/{exchangeName}"),
             ("GET", "/topicExchanges/{exchangeName}/topics"),
             ("GET", "/routingRules/{rule_id}"), ("PUT", "/routingRules/{rule_id}"),
             ("DELETE", "/routingRules/{rule_id}"),
             ("POST", "/routingChannel/{rule_id}/start"),
             ("POST", "/routingChannel/{rule_id}/stop"),
             ("GET", "/queues/{queue}"), ("DELETE", "/queues/{queue}"),
             ("POST", "/queues/{queue}/purge"), ("POST", "/queues/{queue}/bindings"),
             ("GET", "/queues/{queue}/messages")}
    assert known <= set(NAMED), known - set(NAMED)
    assert set(BODIES) <= set(NAMED)  # no stale body for a route that went


def _path(path: str) -> str:
    """The path template with placeholders for what its parameters name."""
    for param, placeholder in PARAMS.items():
        path = path.replace(f"{{{param}}}", placeholder)
    unknown = [part for part in path.split("/") if part.startswith("{")
               and part not in PARAMS.values()]
    if unknown:
        pytest.fail(f"path parameter(s) {unknown} of {path}: add what they name to PARAMS")
    return path


@pytest.mark.parametrize(("method", "path"), NAMED, ids=[f"{m} {p}" for m, p in NAMED])
def test_another_tenants_object_in_the_path_is_404(world: World, method: str,
                                                   path: str) -> None:
    template = _path(path)
    body = BODIES.get((method, path))
    r = world.request(method, _fill(template, world.names), _fill(body, world.names))
    assert r.status_code == 404, (method, path, r.text)
    _not_found(r.json())
    missing = world.request(method, _fill(template, _missing(world.names)),
                            _fill(body, _missing(world.names)))
    assert missing.status_code == 404, missing.text
    _as_if_missing(world, r.json(), missing.json())
    # The stopped rule too (a running rule and one that is not may take other paths).
    if "{rid}" in template:
        r = world.request(method, _fill(template.replace("{rid}", "{stopped}"), world.names),
                          _fill(body, world.names))
        assert r.status_code == 404, r.text
        _not_found(r.json())


# B's own objects in the path, A's in the body or query: (method, path, body, field).
REFERENCES = [
    ("POST", "/publish", {"exchange": "{ex}", "topic": "a.x", "message": "hijack"}, "exchange"),
    ("POST", "/publish", {"exchange": "{fan}", "message": "hijack"}, "exchange"),
    ("POST", "/publish", {"queue": "{q}", "message": "hijack"}, "queue"),
    ("POST", "/publish", {"exchange": "{ex}", "routingKey": "a.x", "message": 1}, "exchange"),
    ("POST", "/queues/{qB}/bindings", {"exchange": "{ex}", "topic": "#"}, "exchange"),
    ("POST", "/routingRules", {"RuleName": "steal", "input": {"type": "Topic",
                               "TopicExchange": "{ex}", "Topic": "#"},
                               "output": {"TopicExchange": "{exB}", "Topic": "t"}},
     "input.TopicExchange"),
    ("POST", "/routingRules", {"RuleName": "steal", "input": {"type": "Queue", "MQName": "{q}"},
                               "output": {"TopicExchange": "{exB}", "Topic": "t"}},
     "input.MQName"),
    ("POST", "/routingRules", {"RuleName": "spam", "input": {"type": "Direct",
                               "DirectExchange": "Direct.Exchange", "RoutingKey": "{keyB}"},
                               "output": {"TopicExchange": "{ex}", "Topic": "a.x"}},
     "output.TopicExchange"),
    ("PUT", "/routingRules/{stoppedB}", {"output": {"TopicExchange": "{ex}", "Topic": "a.x"}},
     "output.TopicExchange"),
    ("PUT", "/routingRules/{stoppedB}", {"input": {"type": "Queue", "MQName": "{q}"}},
     "input.MQName"),
    ("PUT", "/routingRules/{stoppedB}", {"input": {"type": "Topic", "TopicExchange": "{fan}",
                                                    "Topic": "#"}}, "input.TopicExchange"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), REFERENCES,
                         ids=[f"{m} {p} {f}" for m, p, _, f in REFERENCES])
def test_another_tenants_object_in_the_body_is_404(world: World, method: str, path: str,
                                                   body: dict[str, Any], field: str) -> None:
    r = world.request(method, _fill(path, world.names), _fill(body, world.names))
    assert r.status_code == 404, r.text
    _not_found(r.json())
    assert r.json().get("field") == field, r.json()
    missing = world.request(method, _fill(path, world.names),
                            _fill(body, _missing(world.names)))
    _as_if_missing(world, r.json(), missing.json())


@pytest.mark.parametrize("query", [{"exchange": "{ex}"}, {"exchange": "{fan}"},
                                   {"exchange": "{ex}", "topic": "a.#"}, {"queue": "{q}"}])
def test_another_tenants_object_by_sse_is_404(world: World, query: dict[str, str]) -> None:
    answers = []
    for names in (world.names, _missing(world.names)):
        # A stream would answer for as long as it is read: read it only if it is an error.
        with world.api.client.stream("GET", f"{MR}/sse", params=_fill(query, names),
                                     headers=world.b) as r:
            assert r.status_code == 404, r.headers
            answers.append(json.loads(r.read()))
    _not_found(answers[0])
    _as_if_missing(world, *answers)


WS_FRAMES = [
    {"action": "subscribe", "exchange": "{ex}", "topic": "#"},
    {"action": "subscribe", "exchange": "{fan}"},
    {"action": "subscribe", "exchange": "{ex}", "topic": "a.#", "batch": 10},
    {"action": "subscribe", "queue": "{q}"},
    {"action": "publish", "exchange": "{ex}", "topic": "a.x", "message": "hijack"},
    {"action": "publish", "queue": "{q}", "message": "hijack"},
    {"action": "publish", "queue": "{q}", "messages": ["hijack", "again"]},
]


@pytest.mark.parametrize("frame", WS_FRAMES, ids=[json.dumps(f) for f in WS_FRAMES])
def test_another_tenants_object_by_websocket_is_an_error_frame(world: World,
                                                               frame: dict[str, Any]) -> None:
    with world.api.client.websocket_connect(f"{MR}/ws", headers=world.b) as ws:
        answers = []
        for names in (world.names, _missing(world.names)):
            ws.send_json({**_fill(frame, names), "ref": "r1"})
            answers.append(ws.receive_json())
        got = answers[0]
        assert got["type"] == "error" and got["ref"] == "r1", got
        _not_found({k: v for k, v in got.items() if k not in ("type", "ref")})
        _as_if_missing(world, *answers)
        # The connection stays open and B's own objects still work on it.
        ws.send_json({"action": "subscribe", "exchange": world.names["exB"], "ref": "own"})
        assert ws.receive_json() == {"type": "subscribed", "id": 0, "ref": "own"}


def test_lists_show_only_own_objects(world: World) -> None:
    for h, mine, theirs in ((world.b, "B", "A"), (world.api.headers(), "", "B")):
        exchanges = _ok(world.request("GET", "/topicExchanges", headers=h))
        assert {e["exchangeName"] for e in exchanges} == {world.names[f"ex{mine}"],
                                                          world.names[f"fan{mine}"]}
        assert [q["name"] for q in _ok(world.request("GET", "/queues", headers=h))] == [
            world.names[f"q{mine}"]]
        rules = _ok(world.request("GET", "/routingRules", headers=h))
        assert [str(r["RuleID"]) for r in rules] == [world.names[f"rid{mine}"],
                                                     world.names[f"stopped{mine}"]]
        # Looking the other's rule up by its name finds none (a filter, not a 404).
        assert _ok(world.api.client.get(f"{MR}/routingRules", headers=h,
                                        params={"RuleName": f"r{theirs}"})) == []
    key_a = _ok(world.as_a("GET", "/routingKey"))
    assert key_a["routingKey"] == world.names["key"] != world.names["keyB"]


# -- fresh apps: what changes messages ---------------------------------------------------------
@pytest.fixture(params=BROKERS)
def fresh(request: pytest.FixtureRequest, make_app: Any) -> Iterator[World]:
    """Two populated tenants on an app of their own, per broker."""
    if request.param == "amqp":
        need_service("RabbitMQ", "127.0.0.1", 5672)
        api = make_app(broker=AMQP)
    else:
        api = make_app()
    w = _world(api)
    yield w
    for h in (w.api.headers(), w.b):  # leave nothing on a shared RabbitMQ
        for r in _ok(w.request("GET", "/routingRules", headers=h)):
            w.request("DELETE", f"/routingRules/{r['RuleID']}", headers=h)
        for q in _ok(w.request("GET", "/queues", headers=h)):
            w.request("DELETE", f"/queues/{q['name']}", headers=h)
        for e in _ok(w.request("GET", "/topicExchanges", headers=h)):
            w.request("DELETE", f"/topicExchanges/{e['exchangeName']}", headers=h)


def test_another_tenants_routing_key_reaches_only_ones_own_direct_exchange(fresh: World
                                                                          ) -> None:
    """B publishing with A's routing key (on "its" direct exchange, or as the key alone)
    feeds B's direct exchange: A's rule never sees it."""
    w = fresh
    key_a = w.names["key"]
    for body in ({"exchange": "Direct.Exchange", "topic": key_a},
                 {"exchange": "Direct.Exchange", "routingKey": key_a}, {"routingKey": key_a}):
        _ok(w.request("POST", "/publish", {**body, "message": _item("node9", 9.0)}))
    # A barrier: A's own message after B's goes through A's rule; the rule keeps order, so
    # once A's arrived, B's would have too.
    _ok(w.as_a("POST", "/publish", {"message": _item("node2", 2.0)}))
    q, rid = w.names["q"], w.names["rid"]
    wait_for("A's marker", lambda: _ok(w.as_a("GET", f"/queues/{q}"))["messages"] == 4)
    got = _ok(w.as_a("GET", f"/queues/{q}/messages?max=10"))["messages"]
    assert [m.get("sensor", m.get("n")) for m in got] == [1, 2, "node1", "node2"]
    wait_for("A's counts", lambda: _ok(w.as_a("GET", f"/routingRules/{rid}"))["counts"][
        "in"] == 2)
    # B's rule, reading B's direct exchange with B's key, saw none of the three either
    # (they carried A's key), nor A's marker.
    _ok(w.request("POST", f"/routingChannel/{w.names['ridB']}/stop"))
    assert _ok(w.request("GET", f"/routingRules/{w.names['ridB']}"))["counts"] == {
        "in": 1, "matched": 1, "out": 1}
    assert _ok(w.request("GET", f"/queues/{w.names['qB']}"))["messages"] == 3


def test_b_cannot_delete_stop_or_purge_and_a_still_can(fresh: World) -> None:
    """After B's attempts, A's objects still work for A: the 404s changed nothing."""
    w = fresh
    n = w.names
    for method, path in (("POST", f"/routingChannel/{n['rid']}/stop"),
                         ("DELETE", f"/routingRules/{n['rid']}"),
                         ("POST", f"/queues/{n['q']}/purge"),
                         ("GET", f"/queues/{n['q']}/messages?max=10"),
                         ("DELETE", f"/queues/{n['q']}"),
                         ("DELETE", f"/topicExchanges/{n['fan']}")):
        assert w.request(method, path).status_code == 404, (method, path)
    # A's rule still runs: a message through it lands in A's queue.
    _ok(w.as_a("POST", "/publish", {"message": _item("node3", 3.0)}))
    wait_for("A's rule", lambda: _ok(w.as_a("GET", f"/queues/{n['q']}"))["messages"] == 4)
    assert _ok(w.as_a("POST", f"/queues/{n['q']}/purge"))["message"] == "4 message(s) purged"
    assert _ok(w.as_a("POST", f"/routingChannel/{n['rid']}/stop"))["Status"] == "Stopped"
    assert w.as_a("DELETE", f"/topicExchanges/{n['fan']}").status_code == 409  # idle uses it
    assert w.as_a("DELETE", f"/routingRules/{n['stopped']}").status_code == 200
    assert w.as_a("DELETE", f"/topicExchanges/{n['fan']}").status_code == 200
    # B's objects are untouched by A's deletions.
    assert _ok(w.request("GET", f"/queues/{n['qB']}"))["messages"] == 3
    assert len(_ok(w.request("GET", "/topicExchanges"))) == 2


# -- the same names in two tenants -------------------------------------------------------------
def test_two_tenants_may_use_the_same_names_apart(fresh: World) -> None:
    w = fresh
    tenants = {"A": w.api.headers(), "B": w.b}
    for h in tenants.values():
        _ok(w.request("POST", "/topicExchanges", {"exchangeName": "ex1"}, h))
        _ok(w.request("POST", "/queues", {"name": "q1"}, h))
        _ok(w.request("POST", "/queues/q1/bindings", {"exchange": "ex1", "topic": "a.#"}, h))
    subs = {}
    for who, h in tenants.items():
        ws = w.api.client.websocket_connect(f"{MR}/ws", headers=h).__enter__()
        ws.send_json({"action": "subscribe", "exchange": "ex1", "topic": "a.#"})
        assert ws.receive_json()["type"] == "subscribed"
        subs[who] = ws
    try:
        for who, h in tenants.items():
            for i in range(3):
                _ok(w.request("POST", "/publish", {"exchange": "ex1", "topic": f"a.{i}",
                                                   "message": {"from": who, "i": i}}, h))
            _ok(w.request("POST", "/publish", {"queue": "q1", "message": {"from": who,
                                                                         "i": 9}}, h))
        for who, ws in subs.items():
            got = [ws.receive_json()["message"] for _ in range(3)]
            assert got == [{"from": who, "i": i} for i in range(3)]
    finally:
        for ws in subs.values():
            ws.__exit__(None, None, None)
    for who, h in tenants.items():
        assert _ok(w.request("GET", "/queues/q1", headers=h))["messages"] == 4
        got = _ok(w.request("GET", "/queues/q1/messages?max=10", headers=h))
        assert got == {"count": 4, "messages": [{"from": who, "i": i} for i in (0, 1, 2, 9)]}
    # A deletes its q1 and ex1: B's of the same names stay, and still route.
    assert w.as_a("DELETE", "/queues/q1").status_code == 200
    assert w.as_a("DELETE", "/topicExchanges/ex1").status_code == 200
    _ok(w.request("POST", "/publish", {"exchange": "ex1", "topic": "a.b", "message": "b"}))
    assert _ok(w.request("GET", "/queues/q1/messages"))["messages"] == ["b"]
    assert w.as_a("GET", "/queues/q1").status_code == 404

"""Message Routing through the platform: exchanges, queues, publishing, WebSocket sessions,
tenant isolation, on the embedded router and on RabbitMQ."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from conftest import need_service, wait_for
from starlette.websockets import WebSocketDisconnect

MR = "/MessageRouting/v2.0"


@pytest.fixture(params=["memory", "amqp"])
def mr(request: pytest.FixtureRequest, make_app: Any) -> Any:
    """An app on each broker, with a second tenant (``mr.other``: its headers)."""
    if request.param == "amqp":
        need_service("RabbitMQ", "127.0.0.1", 5672)
        api = make_app(broker="amqp://guest:guest@127.0.0.1:5672/")
    else:
        api = make_app()
    api.other = {"x-api-key": api.new_key(f"other-{uuid.uuid4().hex[:8]}")}
    return api


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_exchanges_are_created_listed_and_deleted(mr: Any) -> None:
    ex = _name("ex")
    r = mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex, "type": "topic"})
    assert r.status_code == 200 and r.json()["exchangeName"] == ex, r.text
    assert [e["exchangeName"] for e in mr.get(f"{MR}/topicExchanges").json()] == [ex]
    r = mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    assert r.status_code == 409 and r.json()["field"] == "exchangeName"
    assert mr.delete(f"{MR}/topicExchanges/{ex}").status_code == 200
    assert mr.get(f"{MR}/topicExchanges").json() == []
    r = mr.delete(f"{MR}/topicExchanges/{ex}")
    assert r.status_code == 404 and r.json()["message"] == f"exchange {ex!r} not found"


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"exchangeName": ""}, "exchangeName", "must be 1 to 128"),
    ({"exchangeName": "a b"}, "exchangeName", "must be 1 to 128"),
    ({"exchangeName": "x" * 129}, "exchangeName", "must be 1 to 128"),
    ({"exchangeName": "amq.mine"}, "exchangeName", "belong to the broker"),
    ({"exchangeName": "ok", "type": "headers"}, "type", "must be one of"),
    ({"exchangeName": "ok", "durable": True}, "durable", "unknown field"),
])
def test_a_bad_exchange_is_refused_naming_the_field(mr: Any, body: dict, field: str,
                                                    words: str) -> None:
    r = mr.post(f"{MR}/topicExchanges", json=body)
    assert r.status_code == 400 and r.json()["field"] == field, r.text
    assert words in r.json()["message"]
    assert mr.get(f"{MR}/topicExchanges").json() == []


def test_a_queue_bound_to_a_topic_gets_matching_messages_in_order(mr: Any) -> None:
    ex, q = _name("ex"), _name("q")
    mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    assert mr.post(f"{MR}/queues", json={"name": q}).status_code == 200
    assert mr.post(f"{MR}/queues/{q}/bindings",
                   json={"exchange": ex, "topic": "plant.*.temp"}).status_code == 200
    for i, topic in enumerate(["plant.a.temp", "plant.a.b.temp", "plant.b.temp", "other"]):
        r = mr.post(f"{MR}/publish", json={"exchange": ex, "topic": topic, "message": {"i": i}})
        assert r.status_code == 200, r.text
    assert mr.get(f"{MR}/queues/{q}").json()["messages"] == 2
    r = mr.get(f"{MR}/queues/{q}/messages", params={"max": 10})
    assert r.json() == {"count": 2, "messages": [{"i": 0}, {"i": 2}]}
    assert mr.get(f"{MR}/queues/{q}").json()["messages"] == 0


def test_a_queue_is_published_to_counted_purged_and_deleted(mr: Any) -> None:
    q = _name("q")
    mr.post(f"{MR}/queues", json={"name": q, "maxLength": 3})
    for i in range(5):
        mr.post(f"{MR}/publish", json={"queue": q, "message": i})
    assert mr.get(f"{MR}/queues").json()[0]["messages"] == 3  # the oldest went first
    assert mr.get(f"{MR}/queues/{q}/messages", params={"max": 1}).json()["messages"] == [2]
    assert mr.post(f"{MR}/queues/{q}/purge").json()["message"] == "2 message(s) purged"
    assert mr.delete(f"{MR}/queues/{q}").status_code == 200
    assert mr.get(f"{MR}/queues/{q}").status_code == 404
    r = mr.post(f"{MR}/publish", json={"queue": q, "message": 1})
    assert r.status_code == 404 and r.json()["field"] == "queue"


def test_another_tenant_sees_none_of_it(mr: Any) -> None:
    ex, q = _name("ex"), _name("q")
    mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    mr.post(f"{MR}/queues", json={"name": q})
    other = mr.other
    assert mr.get(f"{MR}/topicExchanges", headers=other).json() == []
    assert mr.get(f"{MR}/queues", headers=other).json() == []
    for method, path, body in (
            ("DELETE", f"/topicExchanges/{ex}", None), ("GET", f"/queues/{q}", None),
            ("DELETE", f"/queues/{q}", None), ("POST", f"/queues/{q}/purge", None),
            ("GET", f"/queues/{q}/messages", None),
            ("POST", f"/queues/{q}/bindings", {"exchange": ex}),
            ("POST", "/publish", {"exchange": ex, "topic": "t", "message": 1}),
            ("POST", "/publish", {"queue": q, "message": 1})):
        r = mr.client.request(method, f"{MR}{path}", json=body, headers=other)
        assert r.status_code == 404, (method, path, r.text)
    # The same names are free for the other tenant, and stay apart.
    r = mr.post(f"{MR}/queues", json={"name": q}, headers=other)
    assert r.status_code == 200
    mr.post(f"{MR}/publish", json={"queue": q, "message": "mine"})
    assert mr.get(f"{MR}/queues/{q}", headers=other).json()["messages"] == 0
    assert mr.get(f"{MR}/queues/{q}").json()["messages"] == 1
    assert mr.get(f"{MR}/routingKey").json() != mr.get(f"{MR}/routingKey",
                                                      headers=other).json()


def test_a_websocket_subscriber_gets_every_matching_message_in_order(mr: Any) -> None:
    ex = _name("ex")
    mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    with mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as ws:
        ws.send_json({"action": "subscribe", "exchange": ex, "topic": "a.#", "ref": "s1"})
        assert ws.receive_json() == {"type": "subscribed", "id": 0, "ref": "s1"}
        for i in range(50):
            topic = "a.x" if i % 2 else "b.x"
            mr.post(f"{MR}/publish", json={"exchange": ex, "topic": topic, "message": i})
        got = [ws.receive_json() for _ in range(25)]
        assert [m["message"] for m in got] == list(range(1, 50, 2))
        assert {m["topic"] for m in got} == {"a.x"} and got[0]["dropped"] == 0


def test_a_websocket_publishes_and_survives_bad_frames(mr: Any) -> None:
    q = _name("q")
    mr.post(f"{MR}/queues", json={"name": q})
    with mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as ws:
        for frame, field in (("{not json", None), ('"a string"', "frame"),
                             ('{"action": "fly"}', "frame.action"),
                             ('{"action": "publish", "queue": "nope", "message": 1}', "queue"),
                             ('{"action": "ack", "id": 7, "tag": 1}', "frame.tag")):
            ws.send_text(frame)
            error = ws.receive_json()
            assert error["type"] == "error" and error.get("field") == field, (frame, error)
        ws.send_json({"action": "publish", "queue": q, "message": {"ok": 1}, "ref": "p"})
        assert ws.receive_json() == {"type": "ok", "action": "publish", "ref": "p"}
    assert mr.get(f"{MR}/queues/{q}").json()["messages"] == 1


def test_a_publish_is_answered_only_when_it_has_a_ref(mr: Any) -> None:
    q = _name("q")
    mr.post(f"{MR}/queues", json={"name": q})
    with mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as ws:
        ws.send_json({"action": "publish", "queue": q, "message": 1})  # no answer
        ws.send_json({"action": "publish", "queue": q, "message": 2, "ref": "two"})
        assert ws.receive_json() == {"type": "ok", "action": "publish", "ref": "two"}
    assert mr.get(f"{MR}/queues/{q}").json()["messages"] == 2


def test_a_batch_is_published_in_order_and_delivered_in_messages_frames(mr: Any) -> None:
    ex = _name("ex")
    mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    with mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as sub, \
            mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as pub:
        sub.send_json({"action": "subscribe", "exchange": ex, "topic": "#", "batch": 50})
        assert sub.receive_json()["type"] == "subscribed"
        pub.send_json({"action": "publish", "exchange": ex, "topic": "a.b",
                       "messages": list(range(120)), "ref": "batch"})
        assert pub.receive_json() == {"type": "ok", "action": "publish", "ref": "batch"}
        got: list[Any] = []
        while len(got) < 120:
            frame = sub.receive_json()
            assert frame["type"] == "messages" and frame["exchange"] == ex, frame
            assert 1 <= len(frame["messages"]) <= 50 and frame["dropped"] == 0
            got += frame["messages"]
    assert got == [{"topic": "a.b", "message": i} for i in range(120)]


@pytest.mark.parametrize(("frame", "field"), [
    ({"action": "publish", "message": 1, "messages": [2]}, "frame.messages"),
    ({"action": "publish", "messages": []}, "frame.messages"),
    ({"action": "publish", "messages": list(range(1001))}, "frame.messages"),
    ({"action": "subscribe", "exchange": "Direct.Exchange", "batch": 0}, "frame.batch"),
    ({"action": "subscribe", "exchange": "Direct.Exchange", "batch": 1001}, "frame.batch"),
    ({"action": "subscribe", "queue": "QNAME", "batch": 10}, "frame.batch"),
])
def test_bad_batches_get_an_error_frame_naming_the_field(mr: Any, frame: dict,
                                                         field: str) -> None:
    q = _name("q")
    mr.post(f"{MR}/queues", json={"name": q})
    if frame.get("queue") == "QNAME":
        frame = {**frame, "queue": q}
    with mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as ws:
        ws.send_json({**frame, "ref": "bad"})
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == 400, error
        assert error["field"] == field and error["ref"] == "bad", error
        ws.send_json({"action": "publish", "queue": q, "message": "still usable", "ref": "ok"})
        assert ws.receive_json()["type"] == "ok"
    assert mr.get(f"{MR}/queues/{q}").json()["messages"] == 1  # nothing of the bad frame


def test_queue_messages_wait_for_their_ack(mr: Any) -> None:
    q = _name("q")
    mr.post(f"{MR}/queues", json={"name": q})
    for i in range(3):
        mr.post(f"{MR}/publish", json={"queue": q, "message": i})
    with mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as ws:
        ws.send_json({"action": "subscribe", "queue": q})
        assert ws.receive_json()["type"] == "subscribed"
        got = [ws.receive_json() for _ in range(3)]
        assert [(m["message"], m["tag"]) for m in got] == [(0, 1), (1, 2), (2, 3)]
        ws.send_json({"action": "ack", "id": 0, "tag": 1})
        assert ws.receive_json() == {"type": "ok", "action": "ack", "ref": None}
    # Two were not acknowledged when the connection ended: they are in the queue again
    # (once the server has closed the consumer, which may end after the client's close).
    wait_for("the unacknowledged messages to return",
             lambda: mr.get(f"{MR}/queues/{q}").json()["messages"] == 2)
    r = mr.get(f"{MR}/queues/{q}/messages", params={"max": 10})
    assert r.json()["messages"] == [1, 2]


def test_an_unauthenticated_websocket_is_refused(mr: Any) -> None:
    for headers in ({}, {"x-api-key": "0" * 64}):
        with pytest.raises(WebSocketDisconnect) as closed, \
                mr.client.websocket_connect(f"{MR}/ws", headers=headers) as ws:
            ws.receive_json()
        assert closed.value.code == 1008
        assert "API key" in closed.value.reason


def test_publishing_by_default_reaches_the_tenants_direct_exchange(mr: Any) -> None:
    key = mr.get(f"{MR}/routingKey").json()
    assert key["DirectExchange"] == "Direct.Exchange"
    with mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as ws:
        ws.send_json({"action": "subscribe", "exchange": "Direct.Exchange",
                      "topic": key["routingKey"]})
        assert ws.receive_json()["type"] == "subscribed"
        mr.post(f"{MR}/publish", json={"message": {"sensor": "s1"}})
        assert ws.receive_json()["message"] == {"sensor": "s1"}


def test_exchanges_and_queues_outlive_a_restart(make_app: Any, tmp_path: Any) -> None:
    from conftest import open_app

    data = tmp_path / "restart"
    with open_app(data) as api:
        key = api.api_key
        api.post(f"{MR}/topicExchanges", json={"exchangeName": "kept"})
        api.post(f"{MR}/queues", json={"name": "keptq"})
    with open_app(data) as api:  # the embedded router started empty: declared again
        headers = {"x-api-key": key}
        r = api.client.post(f"{MR}/queues/keptq/bindings", json={"exchange": "kept"},
                            headers=headers)
        assert r.status_code == 200, r.text
        api.client.post(f"{MR}/publish", json={"exchange": "kept", "topic": "x",
                                                "message": 1}, headers=headers)
        assert api.client.get(f"{MR}/queues/keptq", headers=headers).json()["messages"] == 1


# -- rules --------------------------------------------------------------------------------
def _rule(mr: Any, name: str, out_exchange: str, **params: Any) -> dict[str, Any]:
    key = mr.get(f"{MR}/routingKey").json()["routingKey"]
    return {"RuleName": name, "RuleDescription": "test", "parallelismFactor": "1",
            "input": {"type": "Direct", "DirectExchange": "Direct.Exchange",
                      "RoutingKey": key, "MQName": ""},
            "params": [{"name": k, "value": v} for k, v in params.items()],
            "output": {"TopicExchange": out_exchange, "Topic": "out"}}


def _item(sensor: str, value: float) -> dict[str, Any]:
    return {"sensor": sensor, "feature": "f1",
            "record": [{"starttime": "2024-05-01T10:00:00Z",
                        "output": [{"name": "temp", "value": value}]}]}


def test_a_running_rule_routes_what_passes_its_filters(mr: Any) -> None:
    ex = _name("ex")
    mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    body = _rule(mr, _name("r"), ex, sensorID="node*", ObservedProperties=[
        {"name": "temp", "type": "quantity", "value": "20-30", "operator": ""}])
    r = mr.post(f"{MR}/routingRules", json=body)
    assert r.status_code == 200, r.text
    rule = r.json()
    assert rule["Status"] == "Created" and rule["RuleName"] == body["RuleName"]
    rid = rule["RuleID"]
    assert mr.post(f"{MR}/routingChannel/{rid}/start").json()["Status"] == "Running"
    with mr.client.websocket_connect(f"{MR}/ws", headers=mr.headers()) as ws:
        ws.send_json({"action": "subscribe", "exchange": ex, "topic": "out"})
        assert ws.receive_json()["type"] == "subscribed"
        for sensor, value in (("node1", 25), ("other", 25), ("node2", 40), ("node3", 21)):
            mr.post(f"{MR}/publish", json={"message": _item(sensor, value)})
        got = [ws.receive_json()["message"] for _ in range(2)]
    assert [(m["sensor"], m["record"][0]["output"][0]["value"]) for m in got] == [
        ("node1", 25), ("node3", 21)]
    r = mr.put(f"{MR}/routingRules/{rid}", json={"RuleDescription": "changed"})
    assert r.status_code == 409  # a running rule is stopped before it changes
    assert mr.post(f"{MR}/routingChannel/{rid}/stop").json()["Status"] == "Stopped"
    rule = mr.get(f"{MR}/routingRules/{rid}").json()
    assert rule["counts"] == {"in": 4, "matched": 2, "out": 2}
    assert mr.put(f"{MR}/routingRules/{rid}",
                  json={"RuleDescription": "changed"}).json()["RuleDescription"] == "changed"
    assert mr.get(f"{MR}/topicExchanges/{ex}/topics").json() == ["out"]
    assert mr.delete(f"{MR}/topicExchanges/{ex}").status_code == 409  # the rule uses it
    assert mr.delete(f"{MR}/routingRules/{rid}").status_code == 200
    assert mr.get(f"{MR}/routingRules/{rid}").status_code == 404


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"RuleName": ""}, 400, "RuleName"),
    ({"output": {"TopicExchange": "nope", "Topic": "t"}}, 404, "output.TopicExchange"),
    ({"output": {"TopicExchange": "amq.direct", "Topic": "t"}}, 400, "output.TopicExchange"),
    ({"input": {"type": "Queue", "MQName": "nope"}}, 404, "input.MQName"),
    ({"params": [{"name": "sensorID", "value": "^(a+)+(b+)+$"}]}, 400, "params[0].value"),
    ({"params": [{"name": "ObservedProperties",
                  "value": [{"name": "t", "value": "1", "operator": "~"}]}]},
     400, "params[0].value[0].operator"),
    ({"colour": "red"}, 400, "colour"),
])
def test_a_bad_rule_is_refused_naming_the_field(mr: Any, change: dict, status: int,
                                                field: str) -> None:
    ex = _name("ex")
    mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    r = mr.post(f"{MR}/routingRules", json={**_rule(mr, _name("r"), ex), **change})
    assert r.status_code == status and r.json()["field"] == field, r.text
    assert mr.get(f"{MR}/routingRules").json() == []


def test_rules_of_another_tenant_are_not_found(mr: Any) -> None:
    ex = _name("ex")
    mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    rid = mr.post(f"{MR}/routingRules", json=_rule(mr, "mine", ex)).json()["RuleID"]
    other = mr.other
    assert mr.get(f"{MR}/routingRules", headers=other).json() == []
    for method, path in (("GET", f"/routingRules/{rid}"), ("PUT", f"/routingRules/{rid}"),
                         ("DELETE", f"/routingRules/{rid}"),
                         ("POST", f"/routingChannel/{rid}/start"),
                         ("POST", f"/routingChannel/{rid}/stop"),
                         ("GET", f"/topicExchanges/{ex}/topics")):
        r = mr.client.request(method, f"{MR}{path}", headers=other,
                              json={} if method == "PUT" else None)
        assert r.status_code == 404, (method, path, r.text)
    assert mr.get(f"{MR}/routingRules/{rid}").json()["Status"] == "Created"
    # The other tenant's rule may not name this tenant's exchange either.
    r = mr.post(f"{MR}/routingRules", json=_rule(mr, "theirs", ex), headers=other)
    assert r.status_code == 404


def test_a_running_rule_runs_again_after_a_restart(tmp_path: Any) -> None:
    from conftest import open_app

    data = tmp_path / "rules"
    with open_app(data) as api:
        key = api.api_key
        api.post(f"{MR}/topicExchanges", json={"exchangeName": "out"})
        api.post(f"{MR}/queues", json={"name": "seen"})
        api.post(f"{MR}/queues/seen/bindings", json={"exchange": "out", "topic": "#"})
        rid = api.post(f"{MR}/routingRules", json=_rule(api, "r", "out")).json()["RuleID"]
        api.post(f"{MR}/routingChannel/{rid}/start")
    with open_app(data) as api:
        h = {"x-api-key": key}
        assert api.client.get(f"{MR}/routingRules/{rid}", headers=h).json()[
            "Status"] == "Running"
        api.client.post(f"{MR}/publish", json={"message": _item("s1", 1)}, headers=h)
        wait_for("the restarted rule to route", lambda: api.client.get(
            f"{MR}/queues/seen", headers=h).json()["messages"] == 1)


def test_a_listed_rule_can_be_sent_back(mr: Any) -> None:
    """What GET answers (RuleID, Status, counts, dates) is accepted back and ignored."""
    ex = _name("ex")
    mr.post(f"{MR}/topicExchanges", json={"exchangeName": ex})
    made = mr.post(f"{MR}/routingRules", json=_rule(mr, "orig", ex)).json()
    listed = mr.get(f"{MR}/routingRules/{made['RuleID']}").json()
    r = mr.put(f"{MR}/routingRules/{made['RuleID']}",
               json={**listed, "RuleDescription": "edited", "Status": "Running",
                     "RuleID": 999})
    assert r.status_code == 200, r.text
    assert r.json()["RuleID"] == made["RuleID"] and r.json()["Status"] == "Created"
    assert r.json()["RuleDescription"] == "edited"
    copy = {**listed, "RuleName": "copy"}
    r = mr.post(f"{MR}/routingRules", json=copy)
    assert r.status_code == 200 and r.json()["RuleID"] != made["RuleID"], r.text


@pytest.mark.parametrize("param", ["RuleName", "RuleDescription"])
def test_a_nul_in_a_rule_search_is_a_400_on_every_store(api_any: Any, param: str) -> None:
    """Found by the fuzzer: PostgreSQL refuses a NUL in text, which answered 500."""
    r = api_any.get(f"{MR}/routingRules", params={param: "a\x00"})
    assert r.status_code == 400 and r.json()["field"] == param, r.text
    assert api_any.get(f"{MR}/routingRules", params={param: "a"}).json() == []

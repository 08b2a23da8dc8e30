"""Every value a user shapes in Message Routing is bounded before it reaches the database
or the broker: values at the limit are stored and read back whole on both stores (a
character may be 4 bytes of UTF-8), one past it is a 400 naming the field and the limit,
and nothing of the refused request is stored."""

from __future__ import annotations

from typing import Any

import pytest

MR = "/MessageRouting/v2.0"
WIDE = "\U0001F321"  # a 4-byte character (thermometer)


def _state(api: Any) -> dict[str, Any]:
    """What the tenant has: exchanges, queues, rules."""
    return {what: api.get(f"{MR}/{what}").json()
            for what in ("topicExchanges", "queues", "routingRules")}


def _rule(key: str, name: str, description: str, exchange: str, topic: str) -> dict[str, Any]:
    return {"RuleName": name, "RuleDescription": description, "parallelismFactor": 1,
            "input": {"type": "Direct", "DirectExchange": "Direct.Exchange", "RoutingKey": key},
            "params": [{"name": "sensorID", "value": "s" * 255}],
            "output": {"TopicExchange": exchange, "Topic": topic}}


def test_values_at_their_limits_are_kept_whole(api_any: Any) -> None:
    api = api_any
    exchange, queue, topic = "e" * 128, "q" * 128, "t." * 99 + "tt"  # 128, 128, 200
    assert api.post(f"{MR}/topicExchanges", json={"exchangeName": exchange}).status_code == 200
    assert api.post(f"{MR}/queues", json={"name": queue, "maxLength": 1_000_000}
                    ).status_code == 200
    r = api.post(f"{MR}/queues/{queue}/bindings", json={"exchange": exchange, "topic": topic})
    assert r.status_code == 200, r.text
    key = api.get(f"{MR}/routingKey").json()["routingKey"]
    name, description = WIDE * 128, WIDE * 1024
    r = api.post(f"{MR}/routingRules", json=_rule(key, name, description, exchange, topic))
    assert r.status_code == 200, r.text
    got = api.get(f"{MR}/routingRules/{r.json()['RuleID']}").json()
    assert (got["RuleName"], got["RuleDescription"]) == (name, description)
    assert got["output"] == {"TopicExchange": exchange, "Topic": topic}
    assert [e["exchangeName"] for e in api.get(f"{MR}/topicExchanges").json()] == [exchange]
    assert api.get(f"{MR}/queues/{queue}").json()["name"] == queue


@pytest.mark.parametrize(("path", "body", "field", "words"), [
    ("topicExchanges", {"exchangeName": "e" * 129}, "exchangeName", "1 to 128"),
    ("topicExchanges", {"exchangeName": "e\x00"}, "exchangeName", "1 to 128"),
    ("queues", {"name": "q" * 129}, "name", "1 to 128"),
    ("queues", {"name": "q1", "maxLength": 1_000_001}, "maxLength", "1000000"),
    ("queues", {"name": "q1", "maxLength": 0}, "maxLength", "1"),
    ("routingRules", "RuleName", "RuleName", "1 to 128 characters"),
    ("routingRules", "RuleDescription", "RuleDescription", "1024"),
    ("routingRules", "Topic", "output.Topic", "200"),
    ("routingRules", "sensorID", "params[0].value", "at most 256"),
])
def test_one_past_a_limit_is_a_400_naming_it_and_stores_nothing(
        api_any: Any, path: str, body: Any, field: str, words: str) -> None:
    api = api_any
    assert api.post(f"{MR}/topicExchanges", json={"exchangeName": "ex1"}).status_code == 200
    if path == "routingRules":
        key = api.get(f"{MR}/routingKey").json()["routingKey"]
        rule = _rule(key, "r1", "d", "ex1", "out")
        if body == "RuleName":
            rule["RuleName"] = WIDE * 129
        elif body == "RuleDescription":
            rule["RuleDescription"] = "d" * 1025
        elif body == "Topic":
            rule["output"]["Topic"] = "t" * 201
        else:
            rule["params"][0]["value"] = "s" * 10_000
        body = rule
    before = _state(api)
    r = api.post(f"{MR}/{path}", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and words in r.json()["message"], r.json()
    assert _state(api) == before

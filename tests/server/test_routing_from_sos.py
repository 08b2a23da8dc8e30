"""Observations inserted with ``x-routing: mq`` or ``both`` enter Message Routing through
the SOS outbox; ``db`` (or no header) stores them only."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import wait_for
from sos_helper import stored_values

SOS, MR = "/api/sos/v2.0", "/MessageRouting/v2.0"


@pytest.fixture
def api(make_app: Any) -> Any:
    api = make_app()
    assert api.post(f"{SOS}/features", json={"name": "f1"}).json()["code"] == 201
    assert api.post(f"{SOS}/sensors", json={"name": "s1", "feature": "f1"}).json()[
        "code"] == 201
    return api


def _body(*values: float, start: int = 0) -> dict[str, Any]:
    return {"observations": [{"sensor": "s1", "feature": "f1", "record": [
        {"starttime": 1_700_000_000_000 + start + i,
         "output": [{"name": "temp", "value": v}]} for i, v in enumerate(values)]}]}


def _outbox(api: Any) -> int:
    return len(api.app.state.sos.outbox_batch(1000))


def _subscribed(api: Any, ws: Any) -> None:
    key = api.get(f"{MR}/routingKey").json()["routingKey"]
    ws.send_json({"action": "subscribe", "exchange": "Direct.Exchange", "topic": key})
    assert ws.receive_json()["type"] == "subscribed"


@pytest.mark.parametrize(("routing", "stored", "words"), [
    ("mq", 0, "routed (not stored)"), ("both", 2, "stored and routed")])
def test_routed_observations_reach_the_tenants_direct_exchange(
        api: Any, routing: str, stored: int, words: str) -> None:
    with api.client.websocket_connect(f"{MR}/ws", headers=api.headers()) as ws:
        _subscribed(api, ws)
        r = api.post(f"{SOS}/observations", json=_body(1.5, 2.5),
                     headers={"x-routing": routing})
        assert r.json()["code"] == 201 and words in r.json()["message"], r.text
        assert ws.receive_json()["message"] == _body(1.5, 2.5)  # as it was sent
    assert stored_values(api) == stored
    wait_for("the outbox to be drained", lambda: _outbox(api) == 0)


def test_stored_observations_do_not_enter_routing(api: Any) -> None:
    with api.client.websocket_connect(f"{MR}/ws", headers=api.headers()) as ws:
        _subscribed(api, ws)
        for n, headers in enumerate(({}, {"x-routing": "db"})):
            assert api.post(f"{SOS}/observations", json=_body(9, start=n),
                            headers=headers).json()["code"] == 201
        api.post(f"{MR}/publish", json={"message": "marker"})
        assert ws.receive_json()["message"] == "marker"  # nothing came before it
    assert stored_values(api) == 2 and _outbox(api) == 0


def test_routed_observations_arrive_in_insert_order(api: Any) -> None:
    with api.client.websocket_connect(f"{MR}/ws", headers=api.headers()) as ws:
        _subscribed(api, ws)
        for i in range(30):
            api.post(f"{SOS}/observations", json=_body(i), headers={"x-routing": "mq"})
        got = [ws.receive_json()["message"] for _ in range(30)]
    assert [m["observations"][0]["record"][0]["output"][0]["value"] for m in got] == list(
        range(30))


def test_another_tenant_does_not_see_routed_observations(api: Any) -> None:
    other = {"x-api-key": api.new_key("routing-other")}
    key = api.get(f"{MR}/routingKey", headers=other).json()["routingKey"]
    with api.client.websocket_connect(f"{MR}/ws", headers=other) as ws:
        # Its own direct exchange, with its own key (a direct exchange matches keys exactly).
        ws.send_json({"action": "subscribe", "exchange": "Direct.Exchange", "topic": key})
        assert ws.receive_json()["type"] == "subscribed"
        api.post(f"{SOS}/observations", json=_body(1), headers={"x-routing": "mq"})
        wait_for("the outbox to be drained", lambda: _outbox(api) == 0)
        api.post(f"{MR}/publish", json={"message": "theirs"}, headers=other)
        first = ws.receive_json()
    assert first["message"] == "theirs" and first["topic"] == key

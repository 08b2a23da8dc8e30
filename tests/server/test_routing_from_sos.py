"""Observations inserted with ``x-routing: mq`` or ``both`` enter Message Routing through
the SOS outbox; ``db`` (or no header) stores them only."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import need_service, wait_for
from sos_helper import stored_values

SOS, MR = "/api/sos/v2.0", "/MessageRouting/v2.0"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"


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


# -- several platform processes on one PostgreSQL database -----------------------------------
def _values(ws: Any, n: int) -> list[float]:
    return [ws.receive_json()["message"]["observations"][0]["record"][0]["output"][0]["value"]
            for _ in range(n)]


def _with_sensor(api: Any, headers: dict[str, str] | None = None) -> Any:
    for path, body in (("features", {"name": "f1"}), ("sensors", {"name": "s1", "feature": "f1"})):
        r = api.post(f"{SOS}/{path}", json=body, headers=headers or {})
        assert r.json()["code"] in (201, 409), r.text
    return api


def test_processes_with_embedded_routers_route_their_own_inserts(
        make_app: Any, pg_url: str) -> None:
    """Each process's embedded router is its own: a row one inserted is routed by it, never
    drained into the router of another process on the same database."""
    a, b = _with_sensor(make_app(pg_url)), _with_sensor(make_app(pg_url))
    with a.client.websocket_connect(f"{MR}/ws", headers=a.headers()) as wa, \
            b.client.websocket_connect(f"{MR}/ws", headers=b.headers()) as wb:
        _subscribed(a, wa)
        _subscribed(b, wb)
        for i in range(10):
            for api, offset in ((a, 0), (b, 100)):
                r = api.post(f"{SOS}/observations", json=_body(offset + i, start=i),
                             headers={"x-routing": "mq"})
                assert r.json()["code"] == 201, r.text
        assert _values(wa, 10) == list(range(10))
        assert _values(wb, 10) == list(range(100, 110))
    for api in (a, b):
        wait_for("the outbox to be drained", lambda api=api: _outbox(api) == 0)


def test_processes_on_one_broker_drain_for_each_other(make_app: Any, pg_url: str) -> None:
    """On RabbitMQ every process reaches the same exchanges: a row inserted through one
    process reaches a subscriber of another, in order, once."""
    need_service("RabbitMQ", "127.0.0.1", 5672)
    a = _with_sensor(make_app(pg_url, broker=AMQP))
    b = make_app(pg_url, broker=AMQP)
    same_tenant = a.headers()  # one database: a's key is good on b
    with a.client.websocket_connect(f"{MR}/ws", headers=a.headers()) as ws:
        _subscribed(a, ws)
        for i in range(20):
            r = b.post(f"{SOS}/observations", json=_body(i, start=i),
                       headers={**same_tenant, "x-routing": "mq"})
            assert r.json()["code"] == 201, r.text
        assert _values(ws, 20) == list(range(20))
        a.post(f"{MR}/publish", json={"message": "marker"})
        assert ws.receive_json()["message"] == "marker"  # nothing routed twice
    wait_for("the outbox to be drained", lambda: _outbox(a) == 0)


def test_rows_a_stopped_process_left_for_its_embedded_router_are_dropped(
        make_app: Any, pg_url: str) -> None:
    """Another process's rows are not routed here; once old, they are dropped (the
    router they were meant for stopped with its process)."""
    import sqlalchemy as sa

    from pyconnector_server.sos.tables import routing_outbox

    api = make_app(pg_url)
    sos, db = api.app.state.sos, api.app.state.db
    with db.write() as conn:
        t = conn.execute(sa.text("SELECT max(id) FROM tenant")).scalar()  # the app's tenant
        conn.execute(sa.insert(routing_outbox), [
            {"tenant_id": t, "routing": "mq", "payload": {"observations": []},
             "created_ms": created, "origin": origin}
            for created, origin in ((0, "dead"), (2**62, "alive"))])
    assert [row for row in sos.outbox_batch(1000) if row[1].id == t] == []  # not ours
    sos.outbox_forget_orphans(3_600_000)
    with db.read() as conn:
        left = conn.execute(sa.select(routing_outbox.c.origin).where(
            routing_outbox.c.tenant_id == t)).scalars().all()
    assert left == ["alive"]  # the recent one is its live process's to route
    with db.write() as conn:
        conn.execute(sa.delete(routing_outbox).where(routing_outbox.c.tenant_id == t))

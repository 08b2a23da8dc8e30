"""The Message Routing part of `make demo`: a rule filtering live observations into a
topic, seen by a WebSocket subscriber (examples/demo.py calls :func:`run`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyconnector


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(conn: pyconnector.connectors) -> None:
    srws = conn.srwsUtils()
    step("Routing: an exchange 'alerts' and a rule sending hot readings to alerts/hot")
    print(srws.createExchange("alerts"))
    rule = srws.directRule("hot-rooms", "alerts", "hot", params=[
        {"name": "sensorID", "value": "room*"},
        {"name": "ObservedProperties", "value": [
            {"name": "temperature", "type": "quantity", "value": "30", "operator": ">"}]}])
    rule_id = srws.createRule(rule)["RuleID"]
    print(srws.startRule(rule_id))

    step("A WebSocket subscriber on alerts/hot; observations inserted with x-routing: both")
    sub = srws.webSocketSubTopic("alerts", "hot")
    print(sub)
    sos = conn.SensorObservation()
    start = datetime(2024, 7, 1, 12, tzinfo=timezone.utc)
    for i, temperature in enumerate((24.5, 31.2, 29.9, 33.0)):
        time = (start + timedelta(minutes=i)).isoformat()
        body = {"observations": [{"sensor": "room1-climate", "record": [
            {"starttime": time, "output": [{"name": "temperature", "value": temperature}]}]}]}
        print(temperature, sos.insertObservation(body, routing="both")["message"])
    for _ in range(2):
        message = sub.get(timeout=10)
        record = message["observations"][0]["record"][0]
        print("hot:", record["starttime"], record["output"][0]["value"])
    sub.stop()
    print(srws.stopRule(rule_id))
    counts = srws.getRule(rule_id)["counts"]
    print(f"rule counts: {counts['in']} in, {counts['matched']} matched, {counts['out']} out")
    srws.close()

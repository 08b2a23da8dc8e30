"""The Message Routing part of `make demo`: a rule filtering live observations into a
topic, seen by a WebSocket subscriber and, when the platform is bridged to an MQTT broker,
by an MQTT subscriber (examples/demo.py calls :func:`run`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyconnector


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


HOT = [{"name": "sensorID", "value": "room*"},
       {"name": "ObservedProperties", "value": [
           {"name": "temperature", "type": "quantity", "value": "30", "operator": ">"}]}]


def run(conn: pyconnector.connectors, mqtt: tuple[str, int] | None = None) -> None:
    """``mqtt``: the MQTT broker (host, port) the platform is bridged to (``--mqtt``)."""
    srws = conn.srwsUtils()
    step("Routing: an exchange 'alerts' and a rule sending hot readings to alerts/hot")
    print(srws.createExchange("alerts"))
    rule_id = srws.createRule(srws.directRule("hot-rooms", "alerts", "hot", params=HOT))["RuleID"]
    print(srws.startRule(rule_id))
    mqtt_sub, mqtt_rule, mqtt_got = None, None, []
    if mqtt is not None:
        step("The same rule with output amq.topic: MQTT subscribers see it under the routing key")
        key = srws.getRoutingKey()["routingKey"]
        mqtt_rule = srws.createRule(srws.directRule("hot-rooms-mqtt", "amq.topic", "alerts.hot",
                                                    params=HOT))["RuleID"]
        print(srws.startRule(mqtt_rule))
        mqtt_sub = conn.mqttSubscribe(*mqtt, None, None, "amq.topic", topic=f"{key}/alerts/hot")
        mqtt_sub.main(mqtt_got.append)  # runs on the MQTT thread: printed below
        print(f"MQTT subscriber on mqtt://{mqtt[0]}:{mqtt[1]}, topic <routing key>/alerts/hot")

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
    if mqtt_sub is not None:
        mqtt_sub.wait(2, timeout=10)
        mqtt_sub.disconnect()
        for message in mqtt_got:
            record = message["observations"][0]["record"][0]
            print("mqtt hot:", record["starttime"], record["output"][0]["value"])
        print(srws.stopRule(mqtt_rule))
    print(srws.stopRule(rule_id))
    counts = srws.getRule(rule_id)["counts"]
    print(f"rule counts: {counts['in']} in, {counts['matched']} matched, {counts['out']} out")
    srws.close()

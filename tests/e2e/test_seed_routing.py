"""The Message Routing and WebSocket lines of the seed guide, verbatim and in the guide's
order, against a real ``pyconnector serve`` process."""

from __future__ import annotations

import pytest
from conftest import wait_for

import pyconnector

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("error::ResourceWarning")]


def _tenant_setup(server, key: str) -> int:
    """What the tenant's administrator does once, before any script runs (docs/routing.md,
    "The connector"): the topic exchange ``ex1`` and a running rule taking what arrives on
    the tenant's direct exchange with its routing key (where ``SendRequestExchange`` and
    ``WebSocketPublish`` publish by default) to ``ex1`` with topic ``test``."""
    with pyconnector.connectors(api_key=key, URL=server.url) as conn, \
            conn.srwsUtils() as admin:
        admin.createExchange("ex1")
        rule = admin.createRule(admin.directRule("seed-to-ex1", "ex1", "test"))
        assert admin.startRule(rule["RuleID"])["Status"] == "Running"
        return int(rule["RuleID"])


def test_seed_guide_routing_lines_verbatim(any_server, tmp_path, capsys) -> None:
    key = any_server.new_key()
    rule_id = _tenant_setup(any_server, key)
    config = tmp_path / "ConfigFile.conf"
    config.write_text(f"[pyconnector]\nURL = {any_server.url}\napi_key = {key}\n")

    # --- from the guide ---
    # import pyconnector library
    import pyconnector
    # Load the configuration details from a file or using explicit parameters
    conn = pyconnector.connectors((str(config)))  # If configuration parameters present in a file  # noqa: UP034
    conn = pyconnector.connectors( api_key=key, URL= any_server.url )  # If user specifies configuration details
    # Load protocol oriented connector for Message routing and web socket
    srws = conn.srwsUtils()
    json = srws.data('ts1',{'obs1':'test_1','obs2':1},'tf1')
    print(srws.SendRequestExchange(json))
    print(srws.WebSocketPublish(json)) # Publish SOS supported json
    print(srws.webSocketSubTopic("ex1","test")) # subscribe to topic-test and exchange name-ex1
    # --- end ---

    try:
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "{'code': 200, 'message': 'published'}"
        assert out[1].startswith("{'type': 'ok', 'action': 'publish', 'ref': ")
        assert out[2].startswith("<WebSocketSubscription ex1 'test' on ws://")
        assert out[2].endswith(": subscribed, 0 received, 0 waiting>")
        assert json["observations"][0]["sensor"] == "ts1"

        # As a script goes on: subscribe, then what is published reaches the subscriber
        # through the rule, as a dict.
        sub = srws.webSocketSubTopic("ex1", "test")
        later = srws.data('ts1', {'obs1': 'test_2', 'obs2': 2}, 'tf1')
        srws.SendRequestExchange(later)
        got = []
        while not got or got[-1] != later:
            # The guide's two messages may still be on their way through the rule.
            got.append(sub.get(timeout=10))
            assert len(got) <= 3, got
        assert all(m in (json, later) for m in got)
        assert isinstance(got[-1], dict)
        assert got[-1]["observations"][0]["record"][0]["output"] == [
            {"name": "obs1", "value": "test_2"}, {"name": "obs2", "value": 2}]
        sub.stop()
        wait_for("the rule's counts", lambda: srws.getRule(rule_id)["counts"] == {
            "in": 3, "matched": 3, "out": 3})
    finally:
        srws.close()  # the subscription the guide printed, too
        conn.close()

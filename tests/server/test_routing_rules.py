"""Routing rules: TCUP's rule JSON checked as the routes check it (``bodies.check(RuleIn,
raw, "rule")``: a 400 naming the field), and the compiled rule applied to observation
items (feature/sensor names and patterns, time windows, property conditions with
operators and ranges, meta-data/parameter/quality)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyconnector.times import format_iso, format_tcup, parse_time
from pyconnector_server.bodies import check
from pyconnector_server.errors import APIError
from pyconnector_server.routing import patterns
from pyconnector_server.routing.bodies import RuleIn, RuleUpdate, updated
from pyconnector_server.routing.engine import CompiledRule, compile_rule, record_time

ROUTING_KEY = "e325f4fe-a0e3-4252-82af-4c24deb8c0cf"
IST_1530 = parse_time("23-JUL-2013 15:30:00 IST")


def template(**values: Any) -> dict[str, Any]:
    """TCUP's create-rule template (docs: tcup-api.md §4.1), every value empty unless
    given: ``feature``, ``sensorID``, ``time``, ``ObservedProperties``, ``meta-data``,
    ``parameter``, ``quality``, ``expression``, ``position``."""
    empty_condition = [{"name": "", "value": "", "type": "text/quantity/count",
                        "operator": ""}]
    return {
        "RuleName": "unique", "RuleDescription": "text", "parallelismFactor": "1",
        "input": {"type": "Direct", "DirectExchange": "Direct.Exchange",
                  "RoutingKey": ROUTING_KEY, "MQName": ""},
        "params": [
            {"name": "feature", "value": values.get("feature", "")},
            {"name": "sensorID", "value": values.get("sensorID", "")},
            {"name": "time", "value": values.get("time", {"starttime": "", "endtime": ""})},
            {"name": "expression",
             "value": values.get("expression", {"if": "", "then": "", "else": ""})},
            {"name": "position", "type": "rectangle/circles/polygon", "geoFencing": "YES/NO",
             "value": values.get("position", {"points": [{"x": "", "y": ""}]})},
            {"name": "ObservedProperties",
             "value": values.get("ObservedProperties", empty_condition)},
            {"name": "meta-data", "value": values.get("meta-data", empty_condition)},
            {"name": "parameter", "value": values.get("parameter", empty_condition)},
            {"name": "quality", "value": values.get("quality", empty_condition)},
        ],
        "output": {"TopicExchange": "DemoExchange", "Topic": "demo1"},
    }


FILLED = template(
    feature="room1", sensorID="NEXUS1",
    time={"starttime": "23-JUL-2013 15:30:00 IST", "endtime": ""},
    ObservedProperties=[{"name": "systolic", "type": "quantity", "value": "80",
                         "operator": ">"}],
)


def rule_of(*params: dict[str, Any], **top: Any) -> RuleIn:
    """A checked rule reading the tenant's direct exchange with these params."""
    raw = {"RuleName": "r1", "input": {"type": "Direct", "DirectExchange": "Direct.Exchange",
                                       "RoutingKey": ROUTING_KEY},
           "params": list(params), "output": {"TopicExchange": "out", "Topic": "t"}, **top}
    return check(RuleIn, raw, "rule")


def compiled(*params: dict[str, Any]) -> CompiledRule:
    return compile_rule(rule_of(*params))


def item(*records: dict[str, Any], sensor: str = "NEXUS1", feature: str | None = "room1",
         **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"sensor": sensor, "record": list(records), **extra}
    if feature is not None:
        out["feature"] = feature
    return out


def rec(t: Any = "24-JUL-2013 10:00:00 IST", **values: Any) -> dict[str, Any]:
    return {"starttime": t, "output": [{"name": k, "value": v} for k, v in values.items()]}


def condition(value: Any, operator: str = "", kind: str | None = "quantity",
              name: str = "systolic") -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "value": value, "operator": operator}
    if kind is not None:
        c["type"] = kind
    return {"name": "ObservedProperties", "value": [c]}


def passes(rule: CompiledRule, observed: Any, name: str = "systolic") -> bool:
    return rule.apply(item(rec(**{name: observed}))) is not None


# -- parsing ---------------------------------------------------------------------------------
def test_tcup_template_filled_in_is_a_rule() -> None:
    rule = check(RuleIn, FILLED, "rule")
    assert rule.RuleName == "unique" and rule.parallelismFactor == 1
    assert rule.input.type == "Direct" and rule.input.RoutingKey == ROUTING_KEY
    assert (rule.output.TopicExchange, rule.output.Topic) == ("DemoExchange", "demo1")
    engine = compile_rule(rule)
    assert not engine.buffer
    assert engine.apply(item(rec(systolic=120))) is not None
    assert engine.apply(item(rec(systolic=80))) is None  # > 80
    assert engine.apply(item(rec(systolic=120), sensor="NEXUS2")) is None
    assert engine.apply(item(rec(systolic=120), feature="room2")) is None
    assert engine.apply(item(rec("23-JUL-2013 15:29:59 IST", systolic=120))) is None


def test_tcup_template_with_empty_values_is_a_buffer_rule() -> None:
    engine = compile_rule(check(RuleIn, template(), "rule"))
    assert engine.buffer
    anything = item(rec("not even a time", whatever="x"), feature=None)
    assert engine.apply(anything) is anything  # passed through, not copied


@pytest.mark.parametrize("empty", ["", [], {}, None])
def test_empty_values_mean_no_filter(empty: Any) -> None:
    engine = compiled(*({"name": n, "value": empty} for n in (
        "feature", "sensorID", "time", "ObservedProperties", "meta-data", "expression")))
    assert engine.buffer


def test_a_checked_rule_round_trips_through_its_json() -> None:
    rule = check(RuleIn, FILLED, "rule")
    dumped = rule.model_dump(mode="json")
    assert dumped["parallelismFactor"] == 1  # TCUP answers a number
    assert check(RuleIn, dumped, "rule") == rule


@pytest.mark.parametrize("given, expected", [("1", 1), (1, 1), ("16", 16), (" 4 ", 4)])
def test_parallelism_factor_is_a_number_or_digits(given: Any, expected: int) -> None:
    assert rule_of(parallelismFactor=given).parallelismFactor == expected


@pytest.mark.parametrize("raw", [
    {"type": "Topic", "TopicExchange": "DemoExchange", "Topic": "plant.*.temp"},
    {"type": "topic", "TopicExchange": "amq.topic", "Topic": "#", "MQName": ""},
    {"type": "Queue", "MQName": "alarms"},
    {"type": "DIRECT", "DirectExchange": "Direct.Exchange", "RoutingKey": ROUTING_KEY},
])
def test_the_three_inputs(raw: dict[str, Any]) -> None:
    rule = rule_of(input=raw)
    assert rule.input.type == raw["type"].capitalize()


def test_an_update_changes_only_what_it_gives() -> None:
    rule = check(RuleIn, FILLED, "rule")
    change = check(RuleUpdate, {"RuleDescription": "new", "parallelismFactor": "2",
                                "params": [{"name": "sensorID", "value": "health*"}]}, "rule")
    new = updated(rule, change)
    assert (new.RuleName, new.RuleDescription, new.parallelismFactor) == ("unique", "new", 2)
    assert new.input == rule.input and new.output == rule.output
    assert compile_rule(new).apply(item(rec(), sensor="health7", feature="x")) is not None


# -- operators, ranges, text -------------------------------------------------------------------
@pytest.mark.parametrize("operator, constant, observed, expected", [
    (">", "80", 81, True), (">", "80", 80, False),
    (">=", "80", 80, True), (">=", "80", 79.9, False),
    ("<", "80", 79, True), ("<", "80", 80, False),
    ("<=", 80, 80, True), ("<=", 80, 80.5, False),
    ("=", "80", 80.0, True), ("=", "80", 81, False),
    ("==", "80.5", 80.5, True), ("==", "80.5", 80, False),
    ("!=", "80", 81, True), ("!=", "80", 80, False),
    ("", "80", 80, True), ("", "80", 79, False),  # no operator: equality
    (">", "-2.5e1", -20, True), (">", "-2.5e1", -30, False),
    (">", "80", "81.5", True),  # numeric text is a number
    (">", "80", "high", False), (">", "80", True, False), (">", "80", None, False),
])
def test_every_number_operator(operator: str, constant: Any, observed: Any,
                               expected: bool) -> None:
    assert passes(compiled(condition(constant, operator)), observed) is expected


@pytest.mark.parametrize("kind", ["quantity", "count", "Quantity", None])
def test_number_types_and_inferred_type(kind: str | None) -> None:
    assert passes(compiled(condition("10", ">", kind)), 11)


@pytest.mark.parametrize("value, operator, inside", [
    ("80-120", "", True), ("(80,120)", "", True), (" 80 - 120 ", "=", True),
    ("80-120", "==", True), ("80-120", "!=", False),
    ("!(80,120)", "", False), ("!(80-120)", "", False), ("! ( 80 , 120 )", "", False),
])
def test_ranges_include_their_ends_and_negated_ranges_are_the_rest(
        value: str, operator: str, inside: bool) -> None:
    engine = compiled(condition(value, operator))
    for observed in (80, 100, 120, "99.5"):
        assert passes(engine, observed) is inside, observed
    for observed in (79.99, 120.01, -100):
        assert passes(engine, observed) is not inside, observed
    assert not passes(engine, "n/a")  # not a number: neither inside nor outside


def test_ranges_of_negative_numbers() -> None:
    engine = compiled(condition("-10--5"))
    assert [passes(engine, x) for x in (-11, -10, -7, -5, -4)] == [
        False, True, True, True, False]
    assert [passes(compiled(condition("!(-10,5)")), x) for x in (-11, 0, 6)] == [
        True, False, True]


@pytest.mark.parametrize("operator, constant, observed, expected", [
    ("=", "ok", "ok", True), ("==", "ok", "OK", False), ("", "ok", "ok", True),
    ("!=", "ok", "alarm", True), ("!=", "ok", "ok", False),
    ("=", "80-120", "80-120", True),  # a text property's value is never a range
    ("=", "5", 5, True), ("=", "true", True, True), ("=", 2.5, "2.5", True),
])
def test_text_properties(operator: str, constant: Any, observed: Any, expected: bool) -> None:
    engine = compiled(condition(constant, operator, "Text", name="status"))
    assert passes(engine, observed, "status") is expected


def test_untyped_text_value_compares_as_text() -> None:
    engine = compiled(condition("alarm", "!=", None, name="status"))
    assert passes(engine, "ok", "status") and not passes(engine, "alarm", "status")


def test_a_name_without_value_asks_for_the_property_to_be_present() -> None:
    engine = compiled(condition("", "", None, name="status"))
    assert passes(engine, "anything", "status")
    assert engine.apply(item(rec(other=1))) is None


def test_records_without_the_property_or_failing_are_dropped() -> None:
    engine = compiled({"name": "ObservedProperties", "value": [
        {"name": "systolic", "type": "quantity", "value": "120", "operator": ">"},
        {"name": "diastolic", "type": "quantity", "value": "60-90"}]})
    good = rec(systolic=130, diastolic=80)
    whole = item(good)
    assert engine.apply(whole) is whole
    mixed = item(rec(systolic=130), rec(systolic=110, diastolic=80), good,
                 rec(systolic=130, diastolic=95))
    before = copy.deepcopy(mixed)
    out = engine.apply(mixed)
    assert out is not None and out["record"] == [good]
    assert out["sensor"] == "NEXUS1" and out["feature"] == "room1"
    assert mixed == before  # the input item is not changed
    assert engine.apply(item(rec(systolic=130))) is None


@pytest.mark.parametrize("broken", [
    None, "text", [], {}, {"sensor": "NEXUS1"}, {"sensor": "NEXUS1", "record": "x"},
    {"sensor": "NEXUS1", "record": [None, 5, "x"]},
    {"sensor": "NEXUS1", "record": [{"starttime": "24-JUL-2013 10:00:00 IST", "output": 5}]},
    {"sensor": "NEXUS1", "record": [{"starttime": "24-JUL-2013 10:00:00 IST",
                                     "output": [None, 5, {"name": "systolic"}]}]},
    {"sensor": ["NEXUS1"], "record": [rec(systolic=130)]},
])
def test_malformed_items_do_not_match_and_do_not_raise(broken: Any) -> None:
    engine = compiled({"name": "sensorID", "value": "^NEXUS[0-9]$"}, condition("80", ">"),
                      {"name": "time", "value": {"starttime": "2013-07-01T00:00:00Z"}})
    assert engine.apply(broken) is None


# -- names and patterns -----------------------------------------------------------------------
@pytest.mark.parametrize("value, kind, yes, no", [
    ("NEXUS1", "name", ["NEXUS1"], ["NEXUS10", "nexus1", "xNEXUS1"]),
    ("health*", "glob", ["health", "health-7", "healthy"], ["Health1", "xhealth"]),
    ("room?_t", "glob", ["room1_t"], ["room12_t", "room_t"]),
    ("node[0-9]", "glob", ["node3"], ["nodeA", "node33"]),
    ("*temp*", "glob", ["a_temp_b"], ["a_tmp"]),
    ("^[a-zA-Z0-9]*$", "regex", ["abc123", ""], ["a-b", "a b"]),
    ("^health", "regex", ["health_room"], ["xhealth"]),
    ("_temp$", "regex", ["room_temp"], ["room_temp2"]),
    ("^(?i:nexus)[0-9]+$", "regex", ["Nexus42"], ["Nexus"]),
    ("^a\\*b$", "regex", ["a*b"], ["ab", "aab"]),  # a name with a '*' in it
])
def test_names_globs_and_regexes(value: str, kind: str, yes: list[str], no: list[str]) -> None:
    assert patterns.kind(value) == kind
    for param in ("sensorID", "feature"):
        engine = compiled({"name": param, "value": value})
        field = "sensor" if param == "sensorID" else "feature"
        for name in yes:
            assert engine.apply({**item(rec()), field: name}) is not None, (param, name)
        for name in no:
            assert engine.apply({**item(rec()), field: name}) is None, (param, name)


def test_a_list_of_names_and_patterns_matches_any() -> None:
    engine = compiled({"name": "sensorID", "value": ["exact1", "health*", "^s[0-9]+$"]})
    for sensor, expected in [("exact1", True), ("health9", True), ("s42", True),
                             ("exact2", False), ("s4x", False)]:
        assert (engine.apply(item(rec(), sensor=sensor)) is not None) is expected


def test_an_item_without_feature_fails_a_feature_filter() -> None:
    engine = compiled({"name": "feature", "value": "room*"})
    assert engine.apply(item(rec(), feature=None)) is None


def test_names_longer_than_any_stored_name_never_match_a_pattern() -> None:
    engine = compiled({"name": "sensorID", "value": "^a"})
    assert engine.apply(item(rec(), sensor="a" * patterns.NAME_MAX)) is not None
    assert engine.apply(item(rec(), sensor="a" * (patterns.NAME_MAX + 1))) is None


def test_a_pattern_is_compiled_once_and_shared() -> None:
    assert patterns.compile_pattern("^s[0-9]+$") is patterns.compile_pattern("^s[0-9]+$")


# -- time windows ------------------------------------------------------------------------------
@pytest.mark.parametrize("start, end", [
    ("23-JUL-2013 15:30:00 IST", "23-JUL-2013 16:30:00 IST"),
    ("23-jul-2013 10:00:00.000 UTC", "23-JUL-2013 11:00:00 UTC"),
    ("2013-07-23T10:00:00Z", "2013-07-23T16:30:00+05:30"),
    (IST_1530, IST_1530 + 3_600_000),
    (str(IST_1530), str(IST_1530 + 3_600_000)),
])
def test_time_windows_in_every_format(start: Any, end: Any) -> None:
    engine = compiled({"name": "time", "value": {"starttime": start, "endtime": end}})
    inside = [IST_1530, IST_1530 + 1, IST_1530 + 3_599_999]
    outside = [IST_1530 - 1, IST_1530 + 3_600_000]  # the end is excluded, as in SOS queries
    for ms in inside:
        for form in (ms, format_tcup(ms), format_iso(ms), str(ms)):
            assert engine.apply(item(rec(form))) is not None, form
    for ms in outside:
        for form in (ms, format_tcup(ms), format_iso(ms)):
            assert engine.apply(item(rec(form))) is None, form


def test_open_ended_windows() -> None:
    after = compiled({"name": "time", "value": {"starttime": "2013-07-23T10:00:00Z"}})
    before = compiled({"name": "time", "value": {"starttime": "", "endtime": IST_1530}})
    assert after.apply(item(rec(IST_1530))) is not None
    assert after.apply(item(rec(IST_1530 - 1))) is None
    assert before.apply(item(rec(IST_1530 - 1))) is not None
    assert before.apply(item(rec(IST_1530))) is None


def test_records_with_no_or_bad_time_are_dropped_by_a_window() -> None:
    engine = compiled({"name": "time", "value": {"starttime": "2013-07-01T00:00:00Z"}})
    for bad in (None, "", "yesterday", "31-FEB-2015 00:00:00", "24-JUL-2013 25:00:00 IST",
                "24-JUL-2013 10:00:00 XYZ", True, [1]):
        assert engine.apply(item({"starttime": bad, "output": []})) is None, bad
    assert engine.apply(item({"output": []})) is None


@pytest.mark.parametrize("text", [
    "03-JUL-2015 13:10:00 IST", "03-jul-2015 13:10:00.5 IST", "3-07-2015 13:10:00 +0530",
    "03-JUL-2015 13:10:00.123 UTC", "03-JUL-2015 13:10:00", "03-JUL-2015 13:10:00 -04:00",
    "2015-07-03T13:10:00.123456Z", "2015-07-03 13:10:00+0530", "2015-07-03T13:10:00+05:30",
    "2015-07-03T13:10:00z", "2015-07-03T13:10:00", "03-JUL-2015 13:10 IST", "03-JUL-2015",
    "1436000000000", "29-FEB-2016 23:59:59.999 PST", "31-DEC-1969 23:59:59.999 UTC",
    "03-JUL-2015 13:10:00.12 IST", "03-JUL-2015 13:10:00.123456 IST", "03-JUL-2015T13:10:00",
    # unreadable, by both:
    "03-JUL-2015 13:10:60 IST", "03-JUL-2015 24:00:00 IST", "03-JUL-2015 13:1x:00 IST",
    "03-JUL-2015 13:10:00.1x3 IST", "03-JUL-2015 13:10:00 XYZ", "30-FEB-2015 13:10:00",
    "03-JUL-2015 13:10:00  IST", "03-JUL-2015 13:10:0a", "2015-07-03T13:10:60Z",
])
def test_record_times_read_as_parse_time_reads_them(text: str) -> None:
    try:
        expected: int | None = parse_time(text)
    except ValueError:
        expected = None
    assert record_time(text) == expected
    assert record_time(text) == expected  # again, from the per-minute cache


# -- meta-data, parameter, quality ------------------------------------------------------------
@pytest.mark.parametrize("key", ["meta-data", "parameter", "quality"])
def test_entry_lists_on_the_record_then_the_item(key: str) -> None:
    engine = compiled({"name": key, "value": [
        {"name": "unit", "type": "text", "value": "C", "operator": "="},
        {"name": "accuracy", "type": "quantity", "value": "0.5", "operator": "<="}]})
    on_record = {**rec(), key: [{"name": "unit", "value": "C"},
                                {"name": "accuracy", "value": 0.2}]}
    assert engine.apply(item(on_record)) is not None
    as_object = {**rec(), key: {"unit": "C", "accuracy": "0.5"}}
    assert engine.apply(item(as_object)) is not None
    on_item = item(rec(), **{key: [{"name": "unit", "value": "C"},
                                   {"name": "accuracy", "value": 0.1}]})
    assert engine.apply(on_item) is not None
    record_wins = item({**rec(), key: [{"name": "accuracy", "value": 0.9}]},
                       **{key: [{"name": "unit", "value": "C"},
                                {"name": "accuracy", "value": 0.1}]})
    assert engine.apply(record_wins) is None  # accuracy 0.9 on the record
    assert engine.apply(item({**rec(), key: [{"name": "unit", "value": "C"}]})) is None
    assert engine.apply(item(rec())) is None  # no list at all


def test_all_filters_together() -> None:
    engine = compiled(
        {"name": "feature", "value": "room*"}, {"name": "sensorID", "value": "^NEXUS[0-9]+$"},
        {"name": "time", "value": {"starttime": "23-JUL-2013 15:30:00 IST"}},
        condition("80-120"), {"name": "quality", "value": [{"name": "q", "value": "good"}]})
    good = {**rec(systolic=100), "quality": [{"name": "q", "value": "good"}]}
    assert engine.apply(item(good)) is not None
    assert engine.apply(item({**good, "quality": [{"name": "q", "value": "bad"}]})) is None
    assert engine.apply(item({**good, "starttime": "23-JUL-2013 15:00:00 IST"})) is None


# -- bad input: a 400 naming the field ----------------------------------------------------------
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to a filled template: ``path`` as in the error (``params[5].value[0]``)."""
    def change(raw: dict[str, Any]) -> None:
        keys: list[Any] = []
        for part in path.replace("]", "").replace("[", ".").split("."):
            keys.append(int(part) if part.isdigit() else part)
        node: Any = raw
        for k in keys[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return change


_DELETE = object()
OP = "params[5].value[0]"  # the ObservedProperties condition of FILLED
BAD: list[tuple[str, Any, str, str]] = [
    # (where, new value, field the 400 names, words in the message)
    ("RuleName", "", "RuleName", "1 to 128 characters"),
    ("RuleName", "x" * 129, "RuleName", "1 to 128 characters"),
    ("RuleName", "a\tb", "RuleName", "control characters"),
    ("RuleName", 5, "RuleName", "expected a string, got a number"),
    ("RuleName", _DELETE, "RuleName", "required"),
    ("RuleDescription", "d" * 1025, "RuleDescription", "0 to 1024 characters"),
    ("parallelismFactor", "0", "parallelismFactor", "between 1 and 16"),
    ("parallelismFactor", 17, "parallelismFactor", "between 1 and 16"),
    ("parallelismFactor", "one", "parallelismFactor", "whole number"),
    ("parallelismFactor", 1.5, "parallelismFactor", "whole number"),
    ("parallelismFactor", True, "parallelismFactor", "whole number"),
    ("unknown", 1, "unknown", "unknown field"),
    ("input.type", "Fanout", "input.type", "must be one of 'Direct', 'Topic' or 'Queue'"),
    ("input.RoutingKey", "", "input.RoutingKey", "required for an input of type Direct"),
    ("input.RoutingKey", "has space", "input.RoutingKey", "printable ASCII"),
    ("input.RoutingKey", "k" * 201, "input.RoutingKey", "1 to 200"),
    ("input.MQName", "q1", "input.MQName", "not used by an input of type Direct"),
    ("input.DirectExchange", "bad/name", "input.DirectExchange", "letters, digits"),
    ("input.DirectExchange", "amq.direct", "input.DirectExchange", "belong to the broker"),
    ("input", {"type": "Queue", "MQName": "amq.q"}, "input.MQName", "belong to the broker"),
    ("input", {"type": "Topic", "TopicExchange": "x"}, "input.Topic", "required"),
    ("output.Topic", "a.#", "output.Topic", "wildcards are for subscribing"),
    ("output.Topic", "", "output.Topic", "printable ASCII"),
    ("output.TopicExchange", "x" * 129, "output.TopicExchange", "1 to 128"),
    ("output", _DELETE, "output", "required"),
    ("params", "feature", "params", "expected a JSON array"),
    ("params[1]", "sensorID", "params[1]", "expected a JSON object"),
    ("params[1].name", "sensor", "params[1].name", "must be one of 'feature', 'sensorID'"),
    ("params[1].name", _DELETE, "params[1].name", "required"),
    ("params[1].color", "red", "params[1].color", "unknown field"),
    ("params[0].value", "^(a+)+$", "params[0].value", "nested repeats"),
    ("params[0].value", "^(\\w)\\1$", "params[0].value", "backreferences"),
    ("params[0].value", "^(a|aa)*b$", "params[0].value", "alternatives inside a repeat"),
    ("params[0].value", "^.*a.*a.*a.*b$", "params[0].value", "at most 3 repeats"),
    ("params[0].value", "_.*a.*a.*b$", "params[0].value", "at most 3 repeats"),
    ("params[0].value", "^x(", "params[0].value", "not a valid regular expression"),
    ("params[0].value", "^a{99999999999}", "params[0].value", "repetition number is too"),
    ("params[0].value", "^[[a]", "params[0].value", "ambiguous regular expression"),
    ("params[0].value", "^(?(1)a|b)", "params[0].value", "not a valid regular expression"),
    ("params[0].value", "^" + "a" * 256, "params[0].value", "at most 256 characters"),
    ("params[0].value", "a\x00b", "params[0].value", "control characters"),
    ("params[1].value", ["ok", 5], "params[1].value[1]", "expected a string, got a number"),
    ("params[1].value", [["s"]], "params[1].value[0]", "expected a string, got an array"),
    ("params[1].value", ["ok", "^[a-"], "params[1].value[1]", "not a valid regular"),
    ("params[1].value", ["s"] * 65, "params[1].value", "at most 64 item(s)"),
    ("params[1].value", {"a": 1}, "params[1].value", "expected a JSON array"),
    ("params[2].value.starttime", "yesterday", "params[2].value.starttime", "unparseable"),
    ("params[2].value.starttime", "03-XYZ-2015 10:00:00", "params[2].value.starttime",
     "unknown month"),
    ("params[2].value.starttime", "03-JUL-2015 10:00:00 ABC", "params[2].value.starttime",
     "unknown time zone"),
    ("params[2].value.starttime", True, "params[2].value.starttime", "epoch milliseconds"),
    ("params[2].value.endtime", "22-JUL-2013 15:30:00 IST", "params[2].value.endtime",
     "must be after starttime"),
    ("params[2].value.until", "x", "params[2].value.until", "unknown field"),
    ("params[2].value", "soon", "params[2].value", "expected a JSON object"),
    ("params[3].value", {"if": "temp>80", "then": "", "else": ""}, "params[3].value",
     "not supported"),
    ("params[4].value", {"points": [{"x": "1", "y": "2"}]}, "params[4].value",
     "not supported"),
    ("params[5].value", [{"name": "a", "value": 1}] * 33, "params[5].value",
     "at most 32 item(s)"),
    ("params[5].value", "systolic>80", "params[5].value", "expected a JSON array"),
    (f"{OP}.operator", "~", f"{OP}.operator", "must be one of >, >=, <, <=, =, ==, !="),
    (f"{OP}.operator", "=>", f"{OP}.operator", "must be one of"),
    (f"{OP}.type", "number", f"{OP}.type", "must be one of quantity, count, text"),
    (f"{OP}.value", "abc", f"{OP}.value", "expected a number or a range"),
    (f"{OP}.value", "80-", f"{OP}.value", "expected a number or a range"),
    (f"{OP}.value", "80-120-130", f"{OP}.value", "expected a number or a range"),
    (f"{OP}.value", "!(10,)", f"{OP}.value", "expected a number or a range"),
    (f"{OP}.value", "120-80", f"{OP}.value", "ends below its start"),
    (f"{OP}.value", "!(20,10)", f"{OP}.value", "ends below its start"),
    (f"{OP}.value", "1e999", f"{OP}.value", "expected a number or a range"),
    (f"{OP}.value", "1e400-1e500", f"{OP}.value", "finite"),
    (f"{OP}.value", True, f"{OP}.value", "expected a string or a number, got a boolean"),
    (f"{OP}.value", {"v": 1}, f"{OP}.value", "got an object"),
    (f"{OP}.value", "", f"{OP}.value", "required with the operator '>'"),
    (f"{OP}.value", "x" * 1025, f"{OP}.value", "at most 1024 characters"),
    (f"{OP}.name", "", f"{OP}.name", "required when a value is given"),
    (f"{OP}.name", "a\nb", f"{OP}.name", "control characters"),
    (f"{OP}.name", "n" * 256, f"{OP}.name", "at most 255"),
    (f"{OP}.unit", "mmHg", f"{OP}.unit", "unknown field"),
    (OP, {"name": "s", "value": "80-90", "operator": "<"}, f"{OP}.operator",
     "a range takes no operator"),
    (OP, {"name": "s", "value": "!(1,2)", "operator": "!="}, f"{OP}.operator",
     "negated range"),
    (OP, {"name": "s", "type": "text", "value": "ok", "operator": ">="}, f"{OP}.operator",
     "a text condition takes =, ==, !="),
    ("params[6].value[0].operator", "?", "params[6].value[0].name",
     "required when a value is given"),
]


@pytest.mark.parametrize("where, value, field, words", BAD,
                         ids=[f"{b[0]}={str(b[1])[:20]!r}" for b in BAD])
def test_bad_input_is_a_400_naming_the_field(where: str, value: Any, field: str,
                                             words: str) -> None:
    raw = copy.deepcopy(FILLED)
    if where == "params[6].value[0].operator":  # a placeholder with a value given
        raw["params"][6]["value"][0]["value"] = "x"
    _set(where, value)(raw)
    with pytest.raises(APIError) as caught:
        check(RuleIn, raw, "rule")
    err = caught.value
    assert err.status == 400
    assert err.field == f"rule.{field}", err.message
    assert err.message.startswith(f"rule.{field}: "), err.message
    assert words in err.message, err.message


def test_each_param_at_most_once() -> None:
    raw = copy.deepcopy(FILLED)
    raw["params"].append({"name": "sensorID", "value": "NEXUS2"})
    with pytest.raises(APIError) as caught:
        check(RuleIn, raw, "rule")
    assert caught.value.field == "rule.params[9].name"
    assert "'sensorID' is given twice (also params[1])" in caught.value.message


def test_too_many_params() -> None:
    raw = rule_of().model_dump(mode="json")
    raw["params"] = [{"name": "feature", "value": ""}] * 17
    with pytest.raises(APIError) as caught:
        check(RuleIn, raw, "rule")
    assert caught.value.field == "rule.params"
    assert "at most 16 item(s)" in caught.value.message


def test_an_update_is_checked_as_strictly() -> None:
    with pytest.raises(APIError) as caught:
        check(RuleUpdate, {"params": [condition("80", "~")]}, "rule")
    assert caught.value.field == "rule.params[0].value[0].operator"
    with pytest.raises(APIError) as caught:
        check(RuleUpdate, {"RuleName": ""}, "rule")
    assert caught.value.field == "rule.RuleName"


def test_the_schema_describes_the_rule() -> None:
    schema = RuleIn.model_json_schema()
    assert set(schema["required"]) == {"RuleName", "input", "output"}
    assert schema["properties"]["RuleName"]["maxLength"] == 128
    assert schema["properties"]["params"]["maxItems"] == 16


def test_the_docs_example_rule_is_valid_and_keeps_the_docs_example_item() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "routing.md").read_text()
    rule_json, item_json = re.findall(r"```json\n(.*?)```", page, re.S)[:2]
    engine = compile_rule(check(RuleIn, json.loads(rule_json), "rule"))
    observed = json.loads(item_json)
    assert engine.apply(observed) is observed
    observed["record"][0]["output"][0]["value"] = 80  # systolic > 80 no more
    assert engine.apply(observed) is None


def test_a_message_with_many_items_keeps_the_passing_ones() -> None:
    engine = compiled({"name": "sensorID", "value": "ts*"}, condition("10", ">", name="temp"))
    one, two = item(rec(temp=11), sensor="ts1"), item(rec(temp=12), rec(temp=5), sensor="ts2")
    body = {"version": "1.0.1", "observations": [one, two]}
    out = engine.apply_message(body)
    assert out is not None and out["version"] == "1.0.1"
    assert out["observations"] == [one, {**two, "record": [rec(temp=12)]}]
    assert out["observations"][0] is one and body["observations"][1]["record"][1] == rec(temp=5)
    everything = {"observations": [one, item(rec(temp=20), sensor="ts3")]}
    assert engine.apply_message(everything) is everything
    assert engine.apply_message({"observations": [item(rec(temp=1), sensor="ts1")]}) is None
    assert engine.apply_message({"observations": "x"}) is None
    assert engine.apply_message(one) is one  # a bare item
    assert engine.apply_message(["not", "sos"]) is None


def test_a_buffer_rule_passes_any_message_unchanged() -> None:
    engine = compile_rule(check(RuleIn, template(), "rule"))
    for message in ({"observations": []}, {"free": "json"}, [1, 2], "text", item(rec())):
        assert engine.apply_message(message) is message


def test_deeply_nested_values_are_a_400_not_a_crash() -> None:
    deep: Any = 1
    for _ in range(3000):  # deeper than Python's recursion limit
        deep = [deep]
    for param, field in [({"name": "expression", "value": deep}, "params[0].value"),
                         ({"name": "position", "value": {"points": deep}}, "params[0].value"),
                         (condition(deep), "params[0].value[0].value"),
                         ({"name": "sensorID", "value": deep}, "params[0].value[0]")]:
        with pytest.raises(APIError) as caught:
            rule_of(param)
        assert caught.value.status == 400 and caught.value.field == f"rule.{field}"

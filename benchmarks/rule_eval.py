"""Routing rule evaluation, standalone: ``.venv/bin/python benchmarks/rule_eval.py``.

Observations/s through a compiled rule with three filters, the issue's case (goal
≥ 50,000/s on one core):

* ``sensorID`` a regex, ``^bench-s0[0-7]$`` (8 of the 10 sensors pass);
* ``ObservedProperties``: ``temperature`` in the range ``18-24`` (about 2 in 3 pass);
* ``time``: records from 10 % into the data on (9 in 10 pass).

Each observation is one SOS item as routing receives it (``sensor``, ``feature``, one
record with ``starttime`` and four outputs: three quantities and one text), its time
written as the connector writes it (TCUP's ``03-JUL-2015 07:40:00.000 UTC``; ``--times
iso|epoch`` for the others). Items are built before the clock starts; the clock runs
over ``CompiledRule.apply`` on every item, counting those that come back.

Baselines, same run, same items, one process:

1. **hand-written filter**: the same three filters as a plain Python loop over the dicts,
   no rule machinery: ``re.search`` on the sensor, ``pyconnector.times.parse_time`` on
   the record's time (what any code reading these times would call), a scan of the
   outputs for the temperature. It must keep the same items as ours (checked).
2. **bare iteration**: a loop touching each item's sensor and record list and nothing
   else; the floor any per-item Python code pays.

Also shown, without a goal: ``orjson.loads`` of each message then ``apply`` (what the
service pays per message it receives). Options: ``--items N`` (default 200,000),
``--runs N`` (default 3; medians), ``--markdown``. The machine is shared: compare ratios.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from common import SENSORS, STATUSES, T0_MS, Metric, log, table  # noqa: E402

from pyconnector.times import format_iso, format_tcup, parse_time  # noqa: E402
from pyconnector_server.bodies import check  # noqa: E402
from pyconnector_server.routing.bodies import RuleIn  # noqa: E402
from pyconnector_server.routing.engine import compile_rule  # noqa: E402

SENSOR_PATTERN = "^bench-s0[0-7]$"
LOW, HIGH = 18.0, 24.0


def items(n: int, times: str) -> list[dict[str, Any]]:
    """``n`` observation items: every sensor reports every second, in turn."""
    rng = random.Random(42)
    fmt: Callable[[int], Any] = {"tcup": format_tcup, "iso": format_iso,
                                 "epoch": lambda ms: ms}[times]
    out = []
    for i in range(n):
        ms = T0_MS + (i // len(SENSORS)) * 1000
        out.append({"sensor": SENSORS[i % len(SENSORS)], "feature": "bench-plant",
                    "record": [{"starttime": fmt(ms), "output": [
                        {"name": "temperature", "value": round(rng.gauss(21.0, 3.0), 2)},
                        {"name": "humidity", "value": round(rng.uniform(20, 80), 1)},
                        {"name": "pressure", "value": round(rng.gauss(1013.25, 8), 2)},
                        {"name": "status", "value": rng.choice(STATUSES)}]}]})
    return out


def start_ms(n: int) -> int:
    """The window's start: 10 % into the data."""
    return T0_MS + (n // 10 // len(SENSORS)) * 1000


def rule(n: int) -> dict[str, Any]:
    """The benchmark rule as TCUP's JSON."""
    return {"RuleName": "bench", "parallelismFactor": "1",
            "input": {"type": "Direct", "DirectExchange": "Direct.Exchange",
                      "RoutingKey": "bench-key"},
            "params": [
                {"name": "sensorID", "value": SENSOR_PATTERN},
                {"name": "ObservedProperties", "value": [
                    {"name": "temperature", "type": "quantity", "value": f"{LOW:g}-{HIGH:g}",
                     "operator": ""}]},
                {"name": "time", "value": {"starttime": format_tcup(start_ms(n)),
                                           "endtime": ""}}],
            "output": {"TopicExchange": "bench-out", "Topic": "matched"}}


# -- the things measured -----------------------------------------------------------------------
def ours(data: list[dict[str, Any]], raw_rule: dict[str, Any]) -> tuple[float, int]:
    apply = compile_rule(check(RuleIn, raw_rule, "rule")).apply
    t0 = time.perf_counter()
    matched = 0
    for item in data:
        if apply(item) is not None:
            matched += 1
    return len(data) / (time.perf_counter() - t0), matched


def ours_decoding(messages: list[bytes], raw_rule: dict[str, Any]) -> float:
    apply = compile_rule(check(RuleIn, raw_rule, "rule")).apply
    loads = orjson.loads
    t0 = time.perf_counter()
    for message in messages:
        apply(loads(message))
    return len(messages) / (time.perf_counter() - t0)


def hand_written(data: list[dict[str, Any]], start: int) -> tuple[float, int]:
    sensor = re.compile(SENSOR_PATTERN).search
    t0 = time.perf_counter()
    matched = 0
    for item in data:
        if not sensor(item["sensor"]):
            continue
        kept = []
        for record in item["record"]:
            if parse_time(record["starttime"]) < start:
                continue
            for output in record["output"]:
                if output["name"] == "temperature":
                    if LOW <= output["value"] <= HIGH:
                        kept.append(record)
                    break
        if kept:
            matched += 1
    return len(data) / (time.perf_counter() - t0), matched


def bare(data: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    seen = 0
    for item in data:
        if item["sensor"] and item["record"]:
            seen += 1
    return len(data) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--times", choices=["tcup", "iso", "epoch"], default="tcup")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    log(f"building {args.items:,} items ({args.times} times)")
    data = items(args.items, args.times)
    messages = [orjson.dumps(i) for i in data]
    raw_rule = rule(args.items)
    label = f"3 filters, {args.times} times"
    vs_hand = Metric(label, "rule apply", "obs/s", base_name="hand-written filter",
                     goal="value >= 50000")
    vs_bare = Metric(label, "rule apply", "obs/s", base_name="bare iteration")
    decoding = Metric(label, "orjson.loads + rule apply", "obs/s")
    for run in range(args.runs):
        log(f"run {run + 1}/{args.runs}")
        rate, matched = ours(data, raw_rule)
        base_rate, base_matched = hand_written(data, start_ms(args.items))
        if matched != base_matched:
            raise SystemExit(f"the rule kept {matched} items, the hand-written filter "
                             f"{base_matched}: they do not filter alike")
        vs_hand.ours.append(rate)
        vs_hand.base.append(base_rate)
        vs_bare.ours.append(rate)
        vs_bare.base.append(bare(data))
        decoding.ours.append(ours_decoding(messages, raw_rule))
    log(f"{matched:,} of {args.items:,} items matched ({matched / args.items:.0%})")
    print(table([vs_hand, vs_bare, decoding], markdown=args.markdown))


if __name__ == "__main__":
    main()

"""Routing rules compiled for speed: one SOS observation item in, its matching records out.

:func:`compile_rule` turns a checked :class:`~.bodies.RuleIn` into a
:class:`CompiledRule` once (patterns compiled, times parsed, conditions turned into
tests); :meth:`CompiledRule.apply` then runs for every observation the rule's input
receives. An item is::

    {"sensor": "s1", "feature": "f1",
     "record": [{"starttime": "03-JUL-2015 13:10:00 IST",
                 "output": [{"name": "temp", "value": 23.5}, …],
                 "meta-data": [{"name": "unit", "value": "C"}]}]}   # optional lists

The engine is pure (no I/O, no clock) and shares nothing mutable but its caches, so a
service may run one compiled rule on several threads. It never raises on a malformed
item: what it cannot read does not match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pyconnector.times import parse_time

from .bodies import ConditionsParam, NamesParam, RuleIn, TimeParam, time_ms
from .conditions import Condition, as_number, as_text
from .patterns import NameFilter

_MISSING = object()
_NEVER, _FOREVER = -(2**63), 2**63

# (name, numeric, test) for one condition; test None: presence only.
Check = tuple[str, bool, Callable[[Any], bool] | None]


class CompiledRule:
    """The filters of one rule, ready to apply. ``buffer`` is true when it has none
    (every item passes unchanged)."""

    __slots__ = ("feature", "sensor", "start", "end", "outputs", "lists", "_records",
                 "buffer")

    def __init__(self, feature: NameFilter | None, sensor: NameFilter | None,
                 start: int | None, end: int | None, outputs: list[Check],
                 lists: list[tuple[str, list[Check]]]) -> None:
        self.feature = feature
        self.sensor = sensor
        self.start = _NEVER if start is None else start
        self.end = _FOREVER if end is None else end
        self.outputs = tuple(outputs)
        self.lists = tuple((key, tuple(checks)) for key, checks in lists)
        timed = start is not None or end is not None
        self._records = timed or bool(self.outputs) or bool(self.lists)
        self.buffer = not self._records and feature is None and sensor is None

    def apply(self, item: Any) -> dict[str, Any] | None:
        """``item`` with only the records that pass (``None`` when none do, or when the
        item's feature or sensor does not). ``item`` itself comes back when every record
        passes; else a shallow copy with a new ``record`` list: ``item`` is never changed."""
        if type(item) is not dict:
            return None
        if self.sensor is not None and not self.sensor(item.get("sensor")):
            return None
        if self.feature is not None and not self.feature(item.get("feature")):
            return None
        records = item.get("record")
        if type(records) is not list or not records:
            return None
        if not self._records:
            return item
        keep = self._keep
        kept = [r for r in records if keep(r, item)]
        if len(kept) == len(records):
            return item
        if not kept:
            return None
        out = dict(item)
        out["record"] = kept
        return out

    def _keep(self, record: Any, item: dict[str, Any]) -> bool:
        try:
            if self.start != _NEVER or self.end != _FOREVER:
                t = record_time(record.get("starttime"))
                if t is None or t < self.start or t >= self.end:
                    return False
            if self.outputs and not _holds(self.outputs, record.get("output"), None):
                return False
            for key, checks in self.lists:
                if not _holds(checks, record.get(key), item.get(key)):
                    return False
            return True
        except (AttributeError, TypeError):  # not a dict, or entries that are not
            return False


def _find(entries: Any, name: str) -> Any:
    """The value of ``name`` in a list of ``{"name", "value"}`` or in an object."""
    if type(entries) is list:
        for entry in entries:
            if entry.get("name") == name:
                return entry.get("value")
        return _MISSING
    if type(entries) is dict:
        return entries.get(name, _MISSING)
    return _MISSING


def _holds(checks: tuple[Check, ...], entries: Any, fallback: Any) -> bool:
    """Whether every check holds on ``entries`` (a name missing there is looked up in
    ``fallback``: the item's list when ``entries`` is a record's)."""
    for name, numeric, test in checks:
        value = _find(entries, name)
        if value is _MISSING and fallback is not None:
            value = _find(fallback, name)
        if value is _MISSING:
            return False
        if test is None:
            continue
        if numeric:
            kind = type(value)
            if kind is not int and kind is not float:
                value = as_number(value)
                if value is None:
                    return False
        elif type(value) is not str:
            value = as_text(value)
        if not test(value):
            return False
    return True


# -- record times: TCUP's and ISO forms read fast, the rest by parse_time -------------------
_TCUP = re.compile(r"(\d{1,2})-([A-Za-z]{3}|\d{1,2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})"
                   r"(?:\.(\d{1,3}))?(?: ([A-Za-z]{1,5}|[+-]\d{2}:?\d{2}))?$")
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?"
                  r"([zZ]|[+-]\d{2}:?\d{2})?$")
_DAYS: dict[str, int | None] = {}  # "date zone" -> epoch ms of that midnight, or None if bad
_DAYS_MAX = 4096


def _midnight(key: str, text: str) -> int | None:
    base = _DAYS.get(key, _MISSING)
    if base is _MISSING:
        try:
            base = parse_time(text)
        except ValueError:
            base = None
        if len(_DAYS) >= _DAYS_MAX:
            _DAYS.clear()
        _DAYS[key] = base
    return base  # type: ignore[return-value]


def record_time(value: Any) -> int | None:
    """A record's ``starttime`` as epoch milliseconds (``None`` if unreadable), as
    :func:`pyconnector.times.parse_time` reads it. Parsing TCUP's form takes parse_time
    about 15 µs; here the date and zone are parsed once per day seen, the clock time
    is plain arithmetic."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is str:
        m = _TCUP.match(value)
        if m is not None:
            d, mon, y, hh, mm, ss, frac, zone = m.groups()
            h, mi, s = int(hh), int(mm), int(ss)
            if h < 24 and mi < 60 and s < 60:
                date = f"{d}-{mon}-{y}"
                base = _midnight(f"{date} {zone}", f"{date} 00:00:00 {zone or 'UTC'}")
                if base is None:
                    return None
                ms = int(frac.ljust(3, "0")) if frac else 0
                return base + ((h * 60 + mi) * 60 + s) * 1000 + ms
        m = _ISO.match(value)
        if m is not None:
            date, hh, mm, ss, frac, zone = m.groups()
            h, mi, s = int(hh), int(mm), int(ss)
            if h < 24 and mi < 60 and s < 60:
                base = _midnight(f"{date} {zone}", f"{date}T00:00:00{zone or ''}")
                if base is None:
                    return None
                ms = int(frac.ljust(6, "0")) // 1000 if frac else 0
                return base + ((h * 60 + mi) * 60 + s) * 1000 + ms
    if kind is bool:
        return None
    try:
        return parse_time(value)
    except (ValueError, TypeError):
        return None


# -- compiling ----------------------------------------------------------------------------------
def _checks(conditions: list[Condition | None]) -> list[Check]:
    return [(c.name, c.numeric, c.test) for c in conditions if c is not None]


def compile_rule(rule: RuleIn) -> CompiledRule:
    """The rule's filters, compiled once; empty ones are left out."""
    names: dict[str, NameFilter | None] = {"feature": None, "sensorID": None}
    start = end = None
    outputs: list[Check] = []
    lists: list[tuple[str, list[Check]]] = []
    for param in rule.params:
        if isinstance(param, NamesParam):
            names[param.name] = NameFilter(param.value) if param.value else None
        elif isinstance(param, TimeParam) and param.value is not None:
            start, end = time_ms(param.value.starttime), time_ms(param.value.endtime)
        elif isinstance(param, ConditionsParam):
            checks = _checks([c.condition() for c in param.value])
            if not checks:
                continue
            if param.name == "ObservedProperties":
                outputs = checks
            else:
                lists.append((param.name, checks))
    return CompiledRule(names["feature"], names["sensorID"], start, end, outputs, lists)

"""Routing rules compiled for speed: one SOS observation item in, its matching records out.

:func:`compile_rule` turns a checked :class:`~.bodies.RuleIn` into a
:class:`CompiledRule` once (patterns compiled, times parsed, conditions turned into
tests); ``CompiledRule.apply`` (one item) or :meth:`~CompiledRule.apply_message` (a
message: an item or TCUP's ``{"observations": [...]}``) then runs for every message the
rule's input receives. Either answers ``None`` for a message that does not match, so a
service counts messages in, matched (not ``None``) and out (published) around it. An
item is::

    {"sensor": "s1", "feature": "f1",
     "record": [{"starttime": "03-JUL-2015 13:10:00 IST",
                 "output": [{"name": "temp", "value": 23.5}, …],
                 "meta-data": [{"name": "unit", "value": "C"}]}]}   # optional lists

The engine is pure (no I/O, no clock) and shares nothing mutable but its caches, so a
service may run one compiled rule on several threads. It never raises on a malformed
item: what it cannot read does not match.
"""

from __future__ import annotations

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


Apply = Callable[[Any], "dict[str, Any] | None"]
Keep = Callable[[Any, "dict[str, Any]"], bool]


class CompiledRule:
    """The filters of one rule, ready to apply. ``buffer`` is true when it has none
    (every message passes unchanged).

    ``apply(item)`` gives ``item`` with only the records that pass (``None`` when none
    do, or when the item's feature or sensor does not). ``item`` itself comes back when
    every record passes (or the rule is a buffer); else a shallow copy with a new
    ``record`` list: ``item`` is never changed. It is a closure made for this rule
    (:func:`_item_test`), not a method: it runs per observation, and reading the
    filters from its closure instead of ``self`` is measurably faster."""

    __slots__ = ("buffer", "apply")

    def __init__(self, feature: NameFilter | None, sensor: NameFilter | None,
                 start: int | None, end: int | None, outputs: list[Check],
                 lists: list[tuple[str, list[Check]]]) -> None:
        keep = _record_test(start, end, tuple(outputs),
                            tuple((key, tuple(checks)) for key, checks in lists))
        self.buffer = keep is None and feature is None and sensor is None
        self.apply: Apply = _item_test(feature, sensor, keep, self.buffer)

    def apply_message(self, message: Any) -> Any:
        """A message as routing carries it: TCUP's insert body (``{"observations":
        [item, …]}``, what SOS, ``SendRequestExchange`` and MQTT devices send) with only
        the items that pass, each with its passing records; or one item, as
        :attr:`apply`. ``None`` when nothing passes; ``message`` itself when everything
        does (and always for a buffer rule, whatever its shape); never changed."""
        if self.buffer:
            return message
        if type(message) is not dict or "observations" not in message:
            return self.apply(message)
        items = message["observations"]
        if type(items) is not list:
            return None
        apply = self.apply
        kept = []
        for item in items:
            out = apply(item)
            if out is not None:
                kept.append(out)
        if not kept:
            return None
        if len(kept) == len(items) and all(a is b for a, b in zip(kept, items)):
            return message
        return {**message, "observations": kept}


def _item_test(feature: NameFilter | None, sensor: NameFilter | None, keep: Keep | None,
               buffer: bool) -> Apply:
    """The rule's ``apply``: the item's names first, then each record (``keep``)."""

    def apply(item: Any) -> dict[str, Any] | None:
        if buffer:
            return item  # type: ignore[no-any-return]
        if type(item) is not dict:
            return None
        if sensor is not None:  # NameFilter.__call__, inlined: this runs per message
            name: Any = item.get("sensor")
            hit = sensor.seen.get(name) if type(name) is str else False
            if not (sensor.match(name) if hit is None else hit):
                return None
        if feature is not None:
            name = item.get("feature")
            hit = feature.seen.get(name) if type(name) is str else False
            if not (feature.match(name) if hit is None else hit):
                return None
        records = item.get("record")
        if type(records) is not list or not records:
            return None
        if keep is None:
            return item
        if len(records) == 1:  # the usual item: no new list
            return item if keep(records[0], item) else None
        kept = [r for r in records if keep(r, item)]
        if len(kept) == len(records):
            return item
        if not kept:
            return None
        out = dict(item)
        out["record"] = kept
        return out

    return apply


def _record_test(start: int | None, end: int | None, outputs: tuple[Check, ...],
                 lists: tuple[tuple[str, tuple[Check, ...]], ...]) -> Keep | None:
    """Whether one record passes the time window and every condition (``None``: no
    filter looks at records)."""
    timed = start is not None or end is not None
    if not (timed or outputs or lists):
        return None
    low = _NEVER if start is None else start
    high = _FOREVER if end is None else end

    def keep(record: Any, item: dict[str, Any]) -> bool:
        try:
            if timed:
                t = record.get("starttime")
                if type(t) is not int:
                    t = record_time(t)
                    if t is None:
                        return False
                if t < low or t >= high:
                    return False
            if outputs:
                entries = record.get("output")
                for name, numeric, test in outputs:
                    for entry in entries:
                        if entry.get("name") == name:
                            value = entry.get("value")
                            break
                    else:
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
            for key, checks in lists:
                if not _holds(checks, record.get(key), item.get(key)):
                    return False
            return True
        except (AttributeError, TypeError):  # not a dict, or entries that are not
            return False

    return keep


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


# -- record times ------------------------------------------------------------------------------
# parse_time takes about 15 µs to read TCUP's form (the connector's), most of a 20 µs
# budget per observation. Here the date, hour, minute and zone are read by parse_time
# once per minute seen (so they are checked exactly as it checks them), the seconds and
# milliseconds by table lookups, which also refuse what is not two or three digits.
# Other forms go to parse_time (ISO 8601 is quick there: datetime.fromisoformat; a path
# like this one measured no faster).
_SECONDS = {f"{i:02d}": i * 1000 for i in range(60)}
_MILLIS = {f"{i:03d}": i for i in range(1000)}
_MINUTES: dict[str, int | None] = {}  # "dd-MMM-yyyy HH:mm" + zone -> epoch ms, None: bad
_MINUTES_MAX = 4096


def _tcup(value: str) -> int | None | object:
    """``dd-MMM-yyyy HH:mm:ss[.SSS][ zone]`` read fast; ``_MISSING`` for another shape."""
    parts = value.split(" ")
    if not 2 <= len(parts) <= 3:
        return _MISSING
    date, clock = parts[0], parts[1]
    if len(date) != 11 or clock[5:6] != ":" or len(clock) not in (8, 12):
        return _MISSING
    second = _SECONDS.get(clock[6:8])
    milli = _MILLIS.get(clock[9:]) if len(clock) == 12 and clock[8] == "." else 0
    if second is None or milli is None:
        return _MISSING
    zone = parts[2] if len(parts) == 3 else ""
    key = value[:17] + zone  # date and HH:mm, as the 11-character date fixes the layout
    base = _MINUTES.get(key, _MISSING)
    if base is _MISSING:
        try:
            base = parse_time(f"{value[:17]}:00 {zone}")
        except ValueError:
            base = None
        if len(_MINUTES) >= _MINUTES_MAX:
            _MINUTES.clear()
        _MINUTES[key] = base
    return None if base is None else base + second + milli  # type: ignore[operator]


def record_time(value: Any) -> int | None:
    """A record's ``starttime`` as epoch milliseconds (``None`` if unreadable), as
    :func:`pyconnector.times.parse_time` reads it (faster for TCUP's form)."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    if kind is str and value[2:3] == "-":
        ms = _tcup(value)
        if ms is not _MISSING:
            return ms  # type: ignore[return-value]
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

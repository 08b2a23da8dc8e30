"""Conditions on an observed property (or a meta-data, parameter or quality entry).

One condition of a rule, as TCUP writes it: ``{"name": "systolic", "type": "quantity",
"value": "80", "operator": ">"}``. :func:`parse` reads it once, when the rule is checked
and again when it is compiled, into a :class:`Condition` whose ``test`` takes the
observed value. What the value may be:

* a number (``80``, ``"80"``, ``"-2.5e3"``) with an operator ``> >= < <= = == !=``
  (no operator means ``=``);
* a range ``"80-120"`` or ``"(80,120)"``: the value lies between both ends, both
  included; a negated range ``"!(10,20)"`` or ``"!(10-20)"``: it lies outside them (the
  values ``10-20`` refuses, no more, no less). A range takes no operator, or ``=``/``==``,
  or ``!=`` (outside it);
* text, for a ``text`` property: ``=``/``==`` (equal) or ``!=`` (different), case-sensitive;
* empty, with no operator: the entry must be present, whatever its value.

``type`` is ``quantity``, ``count`` or ``text`` (any case); left out, a number or range
means a number comparison and anything else text. An observed value that is not a number
(or numeric text) fails every number comparison. An entry whose name and value are both
empty is a placeholder of TCUP's template: no condition, whatever its type and operator.
"""

from __future__ import annotations

import math
import operator as op
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

OPERATORS = (">", ">=", "<", "<=", "=", "==", "!=")
TYPES = ("quantity", "count", "text")
TEXT_OPERATORS = ("=", "==", "!=")
TEXT_MAX = 1024  # characters of a text value to compare with

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RANGE = re.compile(rf"^\s*(?:({_NUM})\s*-\s*({_NUM})|\(\s*({_NUM})\s*,\s*({_NUM})\s*\))\s*$")
_NOT_RANGE = re.compile(rf"^\s*!\s*\(\s*({_NUM})\s*[,-]\s*({_NUM})\s*\)\s*$")
# The number test, as ``partial(cmp, constant)(observed)``: ``c < x`` is ``x > c``.
_NUMBER_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    ">": op.lt, ">=": op.le, "<": op.gt, "<=": op.ge, "=": op.eq, "==": op.eq, "!=": op.ne}

Test = Callable[[Any], bool]


class ConditionError(ValueError):
    """A condition the platform refuses: ``field`` is the key at fault (``operator``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Condition:
    """A checked condition: the entry ``name`` must be present and, when ``test`` is set,
    ``test(observed value)`` true. ``numeric`` says the test takes a number (the
    observed value is converted first: see :func:`as_number`)."""

    name: str
    numeric: bool
    test: Test | None


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse(name: str, kind: str | None, value: Any, operator: str | None) -> Condition | None:
    """The condition these four fields say (``None`` for a template placeholder), or
    :class:`ConditionError` naming the field at fault."""
    if not name:
        if _empty(value):
            return None
        raise ConditionError("name", "required when a value is given")
    operator = (operator or "").strip()
    if operator and operator not in OPERATORS:
        raise ConditionError("operator", f"must be one of {', '.join(OPERATORS)} (or empty)")
    kind = (kind or "").strip().lower() or None
    if kind is not None and kind not in TYPES:
        raise ConditionError("type", f"must be one of {', '.join(TYPES)} (or empty)")
    if _empty(value):
        if operator:
            raise ConditionError("value", f"required with the operator {operator!r}")
        return Condition(name, False, None)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConditionError("value", "expected a string or a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConditionError("value", "expected a finite number")
    if kind == "text" or (kind is None and not _numeric(value)):
        return Condition(name, False, _text_test(value, operator))
    return Condition(name, True, _number_test(value, operator, kind))


def _numeric(value: Any) -> bool:
    """Whether an untyped condition value reads as a number or a range."""
    if not isinstance(value, str):
        return True
    return as_number(value) is not None or bool(_RANGE.match(value) or _NOT_RANGE.match(value))


def _text_test(value: Any, operator: str) -> Test:
    if operator and operator not in TEXT_OPERATORS:
        raise ConditionError("operator", f"a text condition takes {', '.join(TEXT_OPERATORS)}"
                             f" (or no operator), not {operator!r}")
    text = as_text(value)
    if len(text) > TEXT_MAX:
        raise ConditionError("value", f"at most {TEXT_MAX} characters, got {len(text)}")
    return partial(op.ne if operator == "!=" else op.eq, text)


def _number_test(value: Any, operator: str, kind: str | None) -> Test:
    what = kind or "number"
    if isinstance(value, str):
        outside = _NOT_RANGE.match(value)
        inside = None if outside else _RANGE.match(value)
        if outside or inside:
            ends = [float(g) for g in (outside or inside).groups() if g is not None]  # type: ignore[union-attr]
            return _range_test(ends[0], ends[1], bool(outside), operator, value)
        number = as_number(value)
        if number is None:
            raise ConditionError("value", f"expected a number or a range for a {what} "
                                 f"condition, got {value[:40]!r}")
    else:
        number = value
    return partial(_NUMBER_TESTS[operator or "="], number)


def _range_test(low: float, high: float, negated: bool, operator: str, text: str) -> Test:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConditionError("value", "the ends of a range must be finite numbers")
    if low > high:
        raise ConditionError("value", f"the range {text.strip()!r} ends below its start")
    if operator not in ("", "=", "==", "!="):
        raise ConditionError("operator", f"a range takes no operator, or =, == or != "
                             f"(outside it), not {operator!r}")
    if operator == "!=":
        if negated:
            raise ConditionError("operator", "'!=' with a negated range: write the range "
                                 "without '!' instead")
        negated = True
    if negated:
        return lambda x: x < low or x > high
    return lambda x: low <= x <= high


def as_number(value: Any) -> float | int | None:
    """An observed value as a number: a number (not a boolean), or text that reads as a
    finite number; else ``None``."""
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is str:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def as_text(value: Any) -> str:
    """An observed value as text, the way SOS stores a value of a text property."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)

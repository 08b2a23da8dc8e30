"""Checks on SOS input. Each failure is a 400 naming the field, e.g. ``record[0].starttime``.

Every value is checked against the limits of both stores before it reaches either:
SQLite stores what PostgreSQL refuses (a NUL character, a unit over its column size), so
only a check of ours answers the same 400 on both.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from pyconnector.times import parse_time

from ..checks import int_param, no_nul
from ..errors import bad_request
from .tables import feature, observed_property

PROPERTY_TYPES = ("quantity", "count", "text")
SENSOR_KINDS = ("atomic", "composite")
ROUTINGS = ("db", "mq", "both")
# Column names of every tabular result; an observed property may not take them.
RESERVED = ("time", "sensor", "feature")
_BAD_NAME = re.compile(r"[/\x00-\x1f\x7f]")
NAME_MAX = feature.c.name.type.length  # 255, as every name column
UNIT_MAX = observed_property.c.unit.type.length  # 64
# JSON-valued fields (metadata): deep nesting breaks the JSON encoders on the way out
# (254 levels) and in (about 1,000), so depth and size are bounded well below both.
JSON_MAX_DEPTH = 32
JSON_MAX_BYTES = 64 * 1024


def is_name(value: Any) -> bool:
    """Whether :func:`name` would accept ``value`` (for lookups that must not fail)."""
    return isinstance(value, str) and 0 < len(value) <= NAME_MAX and not _BAD_NAME.search(value)


def name(value: Any, field: str) -> str:
    """A name of a feature, sensor or property: 1-255 characters, no '/', no control chars."""
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected a string, got {type(value).__name__}", field)
    if not value or len(value) > NAME_MAX:
        raise bad_request(f"{field}: must be 1 to {NAME_MAX} characters", field)
    if _BAD_NAME.search(value):
        raise bad_request(f"{field}: must not contain '/' or control characters", field)
    return value


def obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{field}: expected a JSON object", field)
    return value


def items(value: Any, field: str, *, allow_empty: bool = False) -> list[Any]:
    if not isinstance(value, list):
        raise bad_request(f"{field}: expected a JSON array", field)
    if not value and not allow_empty:
        raise bad_request(f"{field}: must not be empty", field)
    return value


def text(value: Any, field: str, default: str = "", max_len: int | None = None) -> str:
    """A free text (description, unit): a string without NUL, at most ``max_len`` long."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected a string", field)
    if max_len is not None and len(value) > max_len:
        raise bad_request(f"{field}: at most {max_len} characters, got {len(value)}", field)
    return no_nul(value, field)


def unit(value: Any, field: str) -> str:
    """The unit of an observed property (the column holds 64 characters)."""
    return text(value, field, max_len=UNIT_MAX)


def choice(value: Any, field: str, allowed: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value.lower() not in allowed:
        raise bad_request(f"{field}: must be one of {', '.join(allowed)}", field)
    return value.lower()


def metadata(value: Any, field: str) -> dict[str, Any]:
    """A metadata object, within :func:`json_value`'s bounds."""
    if value is None:
        return {}
    return json_value(obj(value, field), field)


def json_value(value: Any, field: str, max_depth: int = JSON_MAX_DEPTH,
               max_bytes: int | None = JSON_MAX_BYTES) -> Any:
    """A JSON value to store as it is: nested at most ``max_depth`` levels (the value
    itself is level 1), at most ``max_bytes`` serialised, no NUL in keys or strings."""
    too_deep = bad_request(f"{field}: nested deeper than {max_depth} levels", field)
    if max_bytes is not None:
        try:
            size = len(orjson.dumps(value))
        except orjson.JSONEncodeError:  # orjson stops at 254 levels
            raise too_deep from None
        if size > max_bytes:
            raise bad_request(f"{field}: {size} bytes as JSON; at most {max_bytes}", field)
    todo = [(value, 1)]  # a loop, not recursion: the depth is what is being checked
    while todo:
        node, depth = todo.pop()
        if isinstance(node, str):
            no_nul(node, field)
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            raise too_deep
        if isinstance(node, dict):
            for key, item in node.items():
                no_nul(key, field)
                todo.append((item, depth + 1))
        else:
            todo.extend((item, depth + 1) for item in node)
    return value


def time_ms(value: Any, field: str) -> int:
    if value is None:
        raise bad_request(f"{field}: required", field)
    try:
        return parse_time(value)
    except ValueError as exc:
        raise bad_request(f"{field}: {exc}", field) from None


def property_name(value: Any, field: str) -> str:
    n = name(value, field)
    if n.lower() in RESERVED:
        raise bad_request(f"{field}: {n!r} is reserved for a column of results", field)
    return n


def infer_type(value: Any) -> str:
    """The property type a first value implies: numbers are quantities, the rest text."""
    return "quantity" if isinstance(value, (int, float)) and not isinstance(value, bool) else "text"


def value(v: Any, ptype: str, field: str) -> tuple[float | None, str | None]:
    """Check ``v`` against the property type; return the ``(num, text)`` pair to store."""
    if v is None:
        raise bad_request(f"{field}: required", field)
    if isinstance(v, (dict, list)):
        raise bad_request(f"{field}: expected a number or a string", field)
    if ptype == "text":
        if isinstance(v, bool):
            return None, "true" if v else "false"
        if isinstance(v, str):
            return None, no_nul(v, field)
        return None, repr(v) if isinstance(v, float) else str(v)
    if isinstance(v, bool):
        raise bad_request(f"{field}: expected a number, got a boolean", field)
    if isinstance(v, str):
        try:
            num = float(v)
        except ValueError:
            raise bad_request(f"{field}: expected a number, got {v!r}", field) from None
    else:
        num = float(v)
    if not math.isfinite(num):
        raise bad_request(f"{field}: expected a finite number, got {v!r}", field)
    if ptype == "count" and not num.is_integer():
        raise bad_request(f"{field}: expected an integer count, got {v!r}", field)
    return num, None


# The largest count a query parameter may ask for (limit, offset, latest): beyond it the
# SQL LIMIT/OFFSET of either store overflows.
def positive_int(raw: str | None, field: str, default: int | None = None,
                 maximum: int | None = None) -> int | None:
    """A count, limit or offset parameter: 0 up to ``maximum`` (default MAX_COUNT)."""
    return int_param(raw, field, default, 0, maximum)

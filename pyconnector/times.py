"""Time values as TCUP writes them, as ISO 8601, or as epoch milliseconds.

Shared by the connector (to format query parameters) and the platform (to parse every
time it accepts). Everything is normalised to integer milliseconds since the epoch, UTC.

Accepted forms:

* epoch milliseconds, as a number or a string of digits (``1436000000000``);
* ISO 8601 (``2015-07-03T13:10:00+05:30``, ``2015-07-03 07:40:00Z``; no zone means UTC);
* TCUP: ``dd-MMM-yyyy HH:mm:ss[.SSS][ zone]`` (``03-JUL-2015 13:10:00 IST``), the month
  an English abbreviation in any case, the zone a short name (``IST``) or an offset
  (``+0530``); ``dd-MM-yyyy`` with a numeric month and a bare ``dd-MMM-yyyy`` date too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["parse_time", "parse_times", "format_tcup", "format_iso", "format_iso_many",
           "to_datetime", "ZONES", "TimeLike"]

TimeLike: TypeAlias = datetime | str | int | float
"""A time the connector sends: a ``datetime``, epoch milliseconds, or text in any accepted form."""

# Short zone names seen in TCUP material, plus the common ones. Java reads "IST" as
# India Standard Time on TCUP's deployments, so we do the same.
ZONES: dict[str, int] = {  # minutes east of UTC
    "UTC": 0, "GMT": 0, "UT": 0, "Z": 0, "WET": 0,
    "IST": 330, "NPT": 345, "PKT": 300, "GST": 240, "MSK": 180,
    "EET": 120, "EEST": 180, "CET": 60, "CEST": 120, "WEST": 60, "BST": 60,
    "SGT": 480, "HKT": 480, "AWST": 480, "JST": 540, "KST": 540,
    "ACST": 570, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300,
    "MST": -420, "MDT": -360, "PST": -480, "PDT": -420,
}
_MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}
_MONTH_NAMES = {i: m for m, i in _MONTHS.items()}

_TCUP = re.compile(
    r"^(?P<d>\d{1,2})-(?P<mon>[A-Za-z]{3}|\d{1,2})-(?P<y>\d{4})"
    r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?)?"
    r"(?:\s*(?P<z>[A-Za-z]{1,5}|[+-]\d{2}:?\d{2}))?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Epoch-millisecond integers outside this window are almost surely seconds or garbage.
_MS_MIN, _MS_MAX = -62135596800000, 253402300799999


def _offset(zone: str) -> int:
    """Minutes east of UTC for a zone name or a ``+hh[:]mm`` offset."""
    if zone[0] in "+-":
        digits = zone[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + int(digits[2:])
        return minutes if zone[0] == "+" else -minutes
    try:
        return ZONES[zone.upper()]
    except KeyError:
        raise ValueError(f"unknown time zone {zone!r}") from None


def _from_datetime(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_time(value: object) -> int:
    """Return ``value`` as epoch milliseconds (UTC); raise ``ValueError`` saying why not."""
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        if value != value or not _MS_MIN <= value <= _MS_MAX:  # NaN or out of range
            raise ValueError(f"epoch milliseconds out of range: {value!r}")
        return int(value)
    if isinstance(value, datetime):
        return _from_datetime(value)
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    text = value.strip()
    if not text:
        raise ValueError("empty time")
    if text.lstrip("-").isdigit():
        return parse_time(int(text))
    match = _TCUP.match(text)
    if match:
        return _parse_tcup(match, value)
    try:
        iso = text[:-1] + "+00:00" if text[-1] in "zZ" else text
        return _from_datetime(datetime.fromisoformat(iso))
    except ValueError:
        raise ValueError(
            f"unparseable time {value!r}: use ISO 8601, epoch milliseconds or "
            "'dd-MMM-yyyy HH:mm:ss[.SSS] zone'"
        ) from None


def _parse_tcup(match: re.Match[str], original: str) -> int:
    g = match.groupdict()
    mon = g["mon"]
    month = int(mon) if mon.isdigit() else _MONTHS.get(mon.upper())
    if not month:
        raise ValueError(f"unknown month {mon!r} in time {original!r}")
    fraction = (g["f"] or "0").ljust(6, "0")
    try:
        dt = datetime(
            int(g["y"]), month, int(g["d"]), int(g["H"] or 0), int(g["M"] or 0),
            int(g["S"] or 0), int(fraction), tzinfo=timezone.utc,
        )
    except ValueError as exc:
        raise ValueError(f"invalid time {original!r}: {exc}") from None
    minutes = _offset(g["z"]) if g["z"] else 0
    return _from_datetime(dt - timedelta(minutes=minutes))


def parse_times(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, int | None]:
    """Parse many times at once: ``(int64 milliseconds, index of the first bad value)``.

    ISO 8601 is parsed vectorised by pandas; only the values it cannot read (TCUP
    format, epoch digits) go through :func:`parse_time` one by one. On a bad value the
    array is incomplete and the index says where to report the error.
    """
    import numpy as np
    import pandas as pd

    series = pd.Series(values, dtype="object")
    out = np.empty(len(series), dtype=np.int64)
    # Digits are epoch milliseconds, as in parse_time; pandas would read "2015" as a year.
    digits = series.str.fullmatch(r"\s*-?\d+\s*").fillna(False).to_numpy(dtype=bool)
    ok = digits.copy()
    if digits.any():
        ms = pd.to_numeric(series[digits].str.strip(), errors="coerce").to_numpy(dtype=float)
        inside = (ms >= _MS_MIN) & (ms <= _MS_MAX)
        out[np.flatnonzero(digits)[inside]] = ms[inside].astype(np.int64)
        ok[np.flatnonzero(digits)[~inside]] = False
    rest = ~digits
    if rest.any():
        parsed = pd.to_datetime(series[rest], format="ISO8601", errors="coerce", utc=True)
        good = parsed.notna().to_numpy()
        idx = np.flatnonzero(rest)[good]
        out[idx] = parsed[good].dt.tz_localize(None).to_numpy().astype(
            "datetime64[ms]").view("int64")
        ok[idx] = True
    for i in np.flatnonzero(~ok):
        try:
            out[i] = parse_time(series.iat[int(i)])
        except ValueError:
            return out, int(i)
    return out, None


def to_datetime(ms: int) -> datetime:
    """Epoch milliseconds to an aware UTC ``datetime``."""
    return _EPOCH + timedelta(milliseconds=ms)


# One rendering per output, each made by one function here: JSON answers write times in
# TCUP format (format_tcup); CSV, tables and files ISO 8601 (format_iso, format_iso_many);
# DataFrames hold tz-aware UTC timestamps.


def format_tcup(ms: int) -> str:
    """Epoch milliseconds as TCUP writes them, in UTC: ``03-JUL-2015 07:40:00.000 UTC``
    (``dd-MMM-yyyy HH:mm:ss.SSS z``, what JSON answers carry)."""
    dt = to_datetime(ms)
    return (f"{dt.day:02d}-{_MONTH_NAMES[dt.month]}-{dt.year:04d} "
            f"{dt:%H:%M:%S}.{dt.microsecond // 1000:03d} UTC")


def format_iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 in UTC, milliseconds only when there are some:
    ``2015-07-03T07:40:00Z``, ``2015-07-03T07:40:00.123Z`` (CSV, tables, files)."""
    dt = to_datetime(ms)
    millis = dt.microsecond // 1000
    return f"{dt:%Y-%m-%dT%H:%M:%S}" + (f".{millis:03d}Z" if millis else "Z")


def format_iso_many(ms: Sequence[int] | np.ndarray) -> pa.StringArray:
    """:func:`format_iso` over many epoch milliseconds at once (a CSV column), as an
    Arrow string array."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    stamps = np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")
    texts = pa.array(np.datetime_as_string(stamps, unit="ms"), pa.string())
    # ".000" can only be the milliseconds: the date and the clock have no dot.
    whole: pa.StringArray = pc.binary_join_element_wise(
        pc.replace_substring(texts, ".000", ""), pa.scalar("Z"), "")
    return whole

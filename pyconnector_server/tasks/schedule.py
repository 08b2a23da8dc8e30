"""When tasks run: a delayed task's time, a recurrent task's cron pattern, and its slots.

TCUP's Task Service is not public; the connector's calls are the spec
(``DelayedTask(delayedTime='15-07-2019 12:35:56.789 IST', timeZone='IST')``,
``RecurrentTask(cronPatternType='fixed', hour='4', day='6')``). What the names mean here:

Delayed times (:func:`parse_delayed`)
    The platform's one time grammar (:mod:`pyconnector.times`, also the SOS's):
    ``dd-MM-yyyy HH:mm:ss[.SSS][ zone]`` as the connector's guide writes it,
    ``dd-MMM-yyyy HH:mm:ss[.SSS][ zone]`` as TCUP's SOS does, ISO 8601, and epoch
    milliseconds; an IANA name may also end the text (``15-07-2019 12:35 Asia/Kolkata``).
    The zone written in the value wins, then ``timeZone``, then UTC. Zones are the
    platform's abbreviations first (``IST`` is India, +05:30, as on TCUP; the same
    fixed offsets the SOS reads, so one text means one instant everywhere), then
    ``+hh:mm`` offsets, then IANA names (``Europe/Berlin``, with its daylight saving).
    A wall-clock time in a spring-forward gap is read with the offset before the change
    (02:30 in Berlin on that day is 03:30 CEST) and a repeated autumn one is the first
    of the two (PEP 495's ``fold=0``). Whether the time is in the past is the route's
    call: it has the clock.

Cron patterns (:func:`cron_expression`), ``cronPatternType`` in any case:
    ``fixed``
        The given fields are fixed values: a number, a list ``1,15``, a range ``1-5``,
        or ``*``. Missing fields are ``*``, except a missing minute, which is 0 (so
        ``hour='4'`` runs once at 04:00, not every minute of that hour).
        ``hour='4', day='6'`` is ``0 4 6 * *``: 04:00 on the 6th of every month.
        ``day`` is the day of the month (1-31), like cron's third column; the day of the
        week is ``weekday`` (0-6, 0 = Sunday). Both at once is refused: cron would fire
        on *either* (the 13th, and every Friday), which nobody writing "Friday the
        13th" means. At least one field must be given; a pattern that can never fire
        (``day='31', month='2'``) is refused.
    ``interval``
        Every N units, N in exactly one of ``minute`` (1-59), ``hour`` (1-23), ``day``
        (1-31) or ``month`` (1-12), the smaller units at their start: ``hour='2'`` is
        ``0 */2 * * *``. It is cron's step, so it restarts at each larger unit: every 7
        minutes fires at :56 and then :00; every 3 days on the 31st and then the 1st.
        There is no ``interval`` argument: the field that carries N names the unit.
    ``cron``
        A standard five-field pattern in ``cron`` (``*/5 * * * *``), as croniter reads
        it (names such as ``mon`` and ``L`` included; no seconds column, no ``@daily``).
        With both a day of month and a weekday restricted it fires on either, as cron does.

    The fields are wall-clock times in the task's time zone (see :func:`next_slot`).

Slots (:func:`next_slot`, :func:`slots_between`)
    Evaluated by croniter on zone-aware datetimes. In a spring-forward gap a daily slot
    moves to the first instant after it (02:30 in Berlin fires at 03:00 CEST) and an
    hourly pattern has no slot in the missing hour. In the repeated autumn hour a
    pattern with fixed hours (``0 2 * * *``) fires once, the first time, as cron does;
    one over every hour (``*`` or ``*/N``) fires in both, since they are an hour apart.

Missed slots (the policy the scheduler implements with :func:`slots_between`)
    A slot that passed while the platform was down is fired once at start-up if it is
    less than a grace period old, and skipped if older: the scheduler asks for
    ``slots_between(cron, max(last_fired, now - grace), now, tz, limit=1)``, fires the
    task once if that is not empty, and then waits for ``next_slot(cron, now, tz)``.
    Many missed slots never become a burst of runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

# The platform's time grammar and zone table: one reading of a time text everywhere.
from pyconnector.times import _TCUP, ZONES, parse_time, to_datetime

from ..errors import bad_request

__all__ = ["ACCEPTED_TIMES", "MAX_TEXT", "MAX_RECURRENCE", "parse_delayed", "resolve_zone",
           "cron_expression", "recurrence_limit", "next_slot", "slots_between"]

MAX_TEXT = 100
"""The longest text accepted for any schedule value (a time, a zone, a cron field)."""
MAX_RECURRENCE = 2**31 - 1
"""The largest recurrence limit: it fits an INTEGER column on SQLite and PostgreSQL."""
ACCEPTED_TIMES = ("'dd-MM-yyyy HH:mm:ss[.SSS][ zone]' (15-07-2019 12:35:56.789 IST), "
                  "'dd-MMM-yyyy HH:mm:ss[.SSS][ zone]' (03-JUL-2015 13:10:00 IST), "
                  "ISO 8601 (2019-07-15T12:35:56.789+05:30) or epoch milliseconds")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_IANA = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$")
# A time text ending in an IANA name: the name has a slash, which no other form has there.
_NAMED = re.compile(r"^(?P<clock>.*\S)\s+(?P<zone>[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)+)$")


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{field}: expected text", field)
    if len(value) > MAX_TEXT:
        raise bad_request(f"{field}: longer than {MAX_TEXT} characters", field)
    text = value.strip()
    if not text:
        raise bad_request(f"{field}: empty", field)
    return text


def _ms(dt: datetime) -> int:
    return (dt - _EPOCH) // _MS


# -- time zones and delayed times ---------------------------------------------------------
def resolve_zone(name: Any, field: str = "timeZone") -> tzinfo:
    """The zone ``name`` means: an abbreviation the platform knows (``IST``), an offset
    (``+05:30``) or an IANA name (``Asia/Kolkata``); a 400 naming ``field`` otherwise."""
    text = _text(name, field)
    if text.upper() in ZONES:
        return timezone(timedelta(minutes=ZONES[text.upper()]), text.upper())
    if m := _OFFSET.match(text):
        hours, minutes = int(m[2]), int(m[3])
        if hours > 23 or minutes > 59:
            raise bad_request(f"{field}: offset {text!r} out of range", field)
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if m[1] == "-" else delta)
    # The pattern keeps paths (../, /etc/...) away from ZoneInfo's file lookup.
    if _IANA.match(text):
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise bad_request(f"{field}: unknown time zone {text!r}: use an IANA name "
                      "(Asia/Kolkata), an offset (+05:30) or one of "
                      f"{', '.join(sorted(ZONES))}", field)


def _wall_clock(text: str, field: str) -> datetime | None:
    """The naive wall-clock time ``text`` writes, or None when it names an instant by
    itself (epoch milliseconds, or a zone or offset written in it)."""
    if text.lstrip("-").isdigit():
        return None
    if m := _TCUP.match(text):
        if m["z"]:
            return None
        return to_datetime(_parse(text, field)).replace(tzinfo=None)
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "zZ" else text)
    except ValueError:
        raise bad_request(f"{field}: unparseable time {text!r}; accepted: {ACCEPTED_TIMES}",
                          field) from None
    return dt if dt.tzinfo is None else None


def _parse(value: str | int, field: str) -> int:
    try:
        return parse_time(value)
    except (ValueError, OverflowError) as exc:  # OverflowError: year 1 or 9999 past a zone
        raise bad_request(f"{field}: {exc}; accepted: {ACCEPTED_TIMES}", field) from None


def parse_delayed(value: str | int, time_zone: str | None,
                  field: str = "delayedTime") -> int:
    """A delayed task's time as epoch milliseconds (UTC).

    The zone written in ``value`` wins, then ``time_zone``, then UTC; ``time_zone`` is
    checked whenever it is given. Bad values are a 400 naming ``field`` (or ``timeZone``).
    """
    default = resolve_zone(time_zone, "timeZone") if time_zone is not None else timezone.utc
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad_request(f"{field}: expected text or epoch milliseconds; accepted: "
                          f"{ACCEPTED_TIMES}", field)
    if isinstance(value, int):
        return _parse(value, field)
    text = _text(value, field)
    zone, named = default, _NAMED.match(text)
    if named:
        text, zone = named["clock"], resolve_zone(named["zone"], field)
    wall = _wall_clock(text, field)
    if wall is None:
        if named:
            raise bad_request(f"{field}: two zones in {value.strip()!r}", field)
        return _parse(text, field)
    try:
        instant = _ms(wall.replace(tzinfo=zone))
    except OverflowError:
        raise bad_request(f"{field}: {value.strip()!r} is out of range", field) from None
    return _parse(instant, field)  # the platform's range for epoch milliseconds


# -- cron patterns ------------------------------------------------------------------------
_RANGES = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12),
           "weekday": (0, 6)}
_ORDER = ("minute", "hour", "day", "month", "weekday")  # cron's column order
_PART = re.compile(r"^([0-9]{1,2})(?:-([0-9]{1,2}))?$")  # ASCII digits only


def _field_text(value: Any, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        lo, hi = _RANGES[field]
        if not lo <= value <= hi:  # before str(): a huge int has no cheap text
            raise bad_request(f"{field}: outside {lo}-{hi}", field)
        return str(value)
    return _text(value, field)


def _fixed(value: Any, field: str) -> str:
    """One ``fixed`` field as a cron column: ``*``, numbers, lists and ranges, in range."""
    text = _field_text(value, field)
    if text == "*":
        return text
    lo, hi = _RANGES[field]
    out = []
    for part in text.split(","):
        m = _PART.match(part.strip())
        if not m:
            raise bad_request(f"{field}: {text!r} is not a number, a list (1,15) or a "
                              "range (1-5)", field)
        first, last = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if not (lo <= first <= hi and lo <= last <= hi):
            raise bad_request(f"{field}: {text!r} is outside {lo}-{hi}", field)
        if first > last:
            raise bad_request(f"{field}: range {part.strip()!r} runs backwards", field)
        out.append(str(first) if first == last else f"{first}-{last}")
    return ",".join(out)


def _step(value: Any, field: str) -> int:
    """An ``interval`` field: a whole number of units, at least 1."""
    text = _field_text(value, field)
    lo, hi = _RANGES[field]
    if not re.fullmatch(r"[0-9]{1,2}", text) or not 1 <= int(text) <= hi:
        raise bad_request(f"{field}: an interval is a whole number from 1 to {hi}", field)
    return int(text)


def _checked(expr: str, field: str) -> str:
    """``expr`` if croniter reads it and it ever fires; a 400 naming ``field`` if not."""
    try:
        croniter(expr, datetime(2000, 1, 1, tzinfo=timezone.utc)).get_next(datetime)
    except CroniterBadDateError:
        raise bad_request(f"{field}: {expr!r} never fires", field) from None
    except (ValueError, KeyError, TypeError) as exc:  # croniter's CroniterError is a ValueError
        raise bad_request(f"{field}: bad cron pattern {expr!r}: {exc}", field) from None
    return expr


def cron_expression(pattern_type: str, *, minute: str | int | None = None,
                    hour: str | int | None = None, day: str | int | None = None,
                    month: str | int | None = None, weekday: str | int | None = None,
                    cron: str | None = None) -> str:
    """The standard five-field cron pattern for TCUP's ``cronPatternType`` and fields
    (see the module's docstring); a 400 naming the offending field otherwise."""
    kind = _text(pattern_type, "cronPatternType").lower()
    fields = {"minute": minute, "hour": hour, "day": day, "month": month, "weekday": weekday}
    given = [name for name in _ORDER if fields[name] is not None]
    if kind == "cron":
        if given:
            raise bad_request(f"{given[0]}: not used with cronPatternType 'cron' (the "
                              "pattern is in cron)", given[0])
        if cron is None:
            raise bad_request("cron: required with cronPatternType 'cron'", "cron")
        columns = _text(cron, "cron").split()
        if len(columns) != 5:
            raise bad_request(f"cron: {cron.strip()!r} has {len(columns)} fields; a cron "
                              "pattern has five (minute hour day month weekday)", "cron")
        return _checked(" ".join(columns), "cron")
    if kind not in ("fixed", "interval"):
        raise bad_request(f"cronPatternType: {pattern_type.strip()!r} is not one of fixed, "
                          "interval, cron", "cronPatternType")
    if cron is not None:
        raise bad_request(f"cron: only used with cronPatternType 'cron', not {kind!r}",
                          "cron")
    if not given:
        raise bad_request(f"cronPatternType: {kind!r} needs at least one of minute, hour, "
                          "day, month" + (", weekday" if kind == "fixed" else ""),
                          "cronPatternType")
    if kind == "interval":
        if "weekday" in given:
            raise bad_request("weekday: no interval of weekdays; use day, or a fixed "
                              "weekday", "weekday")
        if len(given) > 1:
            raise bad_request(f"{given[1]}: an interval takes one field (minute, hour, day "
                              f"or month), not {' and '.join(given)}", given[1])
        unit = given[0]
        at = _ORDER.index(unit)
        # Smaller units at their start ("every 2 hours" at :00), larger ones all ("*").
        starts = {"minute": "0", "hour": "0", "day": "1"}
        columns = {name: starts[name] if i < at else "*" for i, name in enumerate(_ORDER)}
        columns[unit] = f"*/{_step(fields[unit], unit)}"
        return _checked(" ".join(columns[name] for name in _ORDER), unit)
    if day is not None and weekday is not None:
        raise bad_request("weekday: not with day: cron would fire on either (every such "
                          "weekday and every such day of the month)", "weekday")
    columns = {name: _fixed(fields[name], name) if fields[name] is not None else "*"
               for name in _ORDER}
    if minute is None:
        columns["minute"] = "0"
    # Only a day that no given month has can make a fixed pattern never fire.
    return _checked(" ".join(columns[name] for name in _ORDER), "day")


def recurrence_limit(value: Any, field: str = "recurrenceLimit") -> int:
    """How many times a recurrent task runs: 0 for ever, else a count. Whole numbers
    (or their digits as text) up to :data:`MAX_RECURRENCE`; a 400 naming ``field`` else."""
    if isinstance(value, str) and len(value) <= MAX_TEXT and re.fullmatch(
            r"\s*-?[0-9]+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{field}: expected a whole number (0 runs for ever)", field)
    if value < 0:
        raise bad_request(f"{field}: negative (0 runs for ever)", field)
    if value > MAX_RECURRENCE:
        raise bad_request(f"{field}: at most {MAX_RECURRENCE}", field)
    return value


# -- slots --------------------------------------------------------------------------------
def _repeated(dt: datetime) -> bool:
    """Whether ``dt`` is the second pass of a wall-clock time repeated in autumn."""
    return dt.fold == 1 and dt.replace(fold=0).utcoffset() != dt.utcoffset()


def _slots(cron: str, after_ms: int, tz: str) -> Iterator[int]:
    """Slots strictly after ``after_ms``, ascending, as epoch milliseconds."""
    zone = resolve_zone(tz, "timeZone")
    # Fixed hours fire once in the repeated autumn hour, as cron does (module docstring).
    once = "*" not in cron.split()[1]
    it = croniter(cron, to_datetime(after_ms).astimezone(zone))
    while True:
        try:
            dt = it.get_next(datetime)
        except CroniterBadDateError:
            return
        if once and _repeated(dt):
            continue
        ms = _ms(dt)
        if ms > after_ms:  # croniter drops the milliseconds of its start
            yield ms


def next_slot(cron: str, after_ms: int, tz: str) -> int:
    """The first slot of ``cron`` strictly after ``after_ms``, its fields read as wall-clock
    times in ``tz``; epoch milliseconds. ``cron`` is one :func:`cron_expression` built (a
    pattern that never fires is refused there); a bad ``tz`` is a 400 naming ``timeZone``."""
    for ms in _slots(cron, after_ms, tz):
        return ms
    raise bad_request(f"cron: {cron!r} never fires", "cron")


def slots_between(cron: str, from_ms: int, to_ms: int, tz: str, limit: int) -> list[int]:
    """The slots of ``cron`` in ``(from_ms, to_ms]``, earliest first, at most ``limit``
    of them: the scheduler's catch-up after downtime (the missed-slot policy is in the
    module's docstring)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int, not {limit!r}")
    out: list[int] = []
    if from_ms >= to_ms:
        return out
    for ms in _slots(cron, from_ms, tz):
        if ms > to_ms or len(out) >= limit:
            break
        out.append(ms)
    return out


#: a slot fired this late is on time, not missed, whatever the catch-up time (with
#: ``--task-catch-up-seconds 0`` every slot would otherwise be "missed" by a tick)
ON_TIME_MS = 1000


def following(cron: str | None, time_zone: str | None, limit: int, fired: int,
              after_ms: int) -> int | None:
    """The slot after ``after_ms`` of a schedule that has fired ``fired`` times; None when
    it has no pattern or its recurrence ``limit`` (0: none) is reached."""
    if cron is None or (limit and fired >= limit):
        return None
    return next_slot(cron, after_ms, time_zone or "UTC")


@dataclass(frozen=True)
class Firing:
    """What taking a due slot means at ``now``, for the task and workflow schedulers alike:
    the latest slot not after now fires (missed ones fire once, together), unless it is
    later than the catch-up time allows (``missed``: skipped, not counted)."""

    slot: int  # the due slot as the row holds it: the compare-and-set's expected value
    latest: int  # the slot that fires
    missed: bool
    fired: int  # the schedule's count once this slot is taken
    next: int | None  # the slot after it, None when the schedule is done

    @classmethod
    def plan(cls, slot: int, fired: int, now: int, catch_up_ms: int,
             after: Callable[[int, int], int | None]) -> Firing:
        """``after(after_ms, fired)`` is the schedule's :func:`following`."""
        latest = slot
        while (nxt := after(latest, fired)) is not None and nxt <= now:
            latest = nxt
        missed = now - latest > max(catch_up_ms, ON_TIME_MS)
        count = fired if missed else fired + 1
        return cls(slot, latest, missed, count, after(max(latest, now), count))

"""Task schedules: delayed times, zones, cron patterns and slots (pyconnector_server.tasks.schedule).

The seed's calls (the connector guide's Task section) are the first cases; every bad
value must be a 400 naming the field the client sent.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pyconnector.times import format_iso
from pyconnector_server.errors import APIError
from pyconnector_server.tasks.schedule import (
    cron_expression,
    next_slot,
    parse_delayed,
    recurrence_limit,
    resolve_zone,
    slots_between,
)


def iso(ms: int) -> str:
    return format_iso(ms)


def ms(text: str) -> int:
    """An ISO 8601 instant with its offset as epoch milliseconds (independent of the code
    under test)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(dt.timestamp()) * 1000 + dt.microsecond // 1000


def refused(field: str, fn, *args, **kwargs) -> APIError:
    with pytest.raises(APIError) as info:
        fn(*args, **kwargs)
    assert info.value.status == 400
    assert info.value.field == field, info.value.message
    assert info.value.message.startswith(f"{field}: ")
    return info.value


# -- delayed times ------------------------------------------------------------------------
@pytest.mark.parametrize("value, zone", [
    ("15-07-2019 12:35:56.789 IST", "IST"),   # the seed's DelayedTask call
    ("15-07-2019 12:35:56.789 IST", None),
    ("15-07-2019 12:35:56.789", "IST"),       # the zone from timeZone
    ("15-07-2019 12:35:56.789", "ist"),
    ("15-07-2019 12:35:56.789", "Asia/Kolkata"),
    ("15-07-2019 12:35:56.789", "+05:30"),
    ("15-JUL-2019 12:35:56.789 IST", None),   # the SOS's TCUP form
    ("15-jul-2019 12:35:56.789", "IST"),
    ("15-07-2019 12:35:56.789 +0530", "UTC"),  # the zone in the text wins
    ("15-07-2019 12:35:56.789 Asia/Kolkata", "Europe/Berlin"),
    ("2019-07-15T12:35:56.789+05:30", "America/New_York"),
    ("2019-07-15T12:35:56.789", "IST"),
    ("2019-07-15T07:05:56.789Z", "IST"),
    ("2019-07-15 07:05:56.789", None),        # no zone anywhere: UTC
    ("15-07-2019 07:05:56.789 GMT", None),
    ("1563174356789", "IST"),                 # epoch milliseconds are an instant
    (1563174356789, "IST"),
    ("  15-07-2019 12:35:56.789 IST  ", None),
])
def test_delayed_time_forms(value, zone):
    assert iso(parse_delayed(value, zone)) == "2019-07-15T07:05:56.789Z"


def test_delayed_time_seed_reschedule_and_other_zones():
    assert iso(parse_delayed("16-07-2019 12:35:56.789 IST", None)) == "2019-07-16T07:05:56.789Z"
    assert iso(parse_delayed("03-JUL-2015 13:10:00 IST", None)) == "2015-07-03T07:40:00Z"
    # Abbreviations are the SOS's fixed offsets; IANA names follow daylight saving.
    assert iso(parse_delayed("15-07-2019 12:00:00", "CET")) == "2019-07-15T11:00:00Z"
    assert iso(parse_delayed("15-07-2019 12:00:00", "Europe/Berlin")) == "2019-07-15T10:00:00Z"
    assert iso(parse_delayed("15-01-2019 12:00:00", "Europe/Berlin")) == "2019-01-15T11:00:00Z"
    assert iso(parse_delayed("15-07-2019", "IST")) == "2019-07-14T18:30:00Z"


def test_delayed_time_in_daylight_saving_changes():
    # 02:30 does not exist in Berlin on 31 March 2024: read with the offset before (+01:00).
    assert iso(parse_delayed("31-03-2024 02:30:00", "Europe/Berlin")) == "2024-03-31T01:30:00Z"
    # 02:30 happens twice on 27 October 2024: the first (CEST, +02:00).
    assert iso(parse_delayed("27-10-2024 02:30:00", "Europe/Berlin")) == "2024-10-27T00:30:00Z"
    assert iso(parse_delayed("27-10-2024 03:30:00", "Europe/Berlin")) == "2024-10-27T02:30:00Z"


@pytest.mark.parametrize("value, zone, field", [
    ("15-07-2019 12:35:56.789", "Mars/Olympus", "timeZone"),
    ("15-07-2019 12:35:56.789", "XYZ", "timeZone"),
    ("15-07-2019 12:35:56.789", "../../etc/passwd", "timeZone"),
    ("15-07-2019 12:35:56.789", "/etc/localtime", "timeZone"),
    ("15-07-2019 12:35:56.789", "Asia", "timeZone"),          # a folder of zones
    ("15-07-2019 12:35:56.789", "+25:00", "timeZone"),
    ("15-07-2019 12:35:56.789", "", "timeZone"),
    ("15-07-2019 12:35:56.789", 330, "timeZone"),
    ("15-07-2019 12:35:56.789 IST", "Nowhere", "timeZone"),   # checked even when unused
    ("15-07-2019 12:35:56.789", "A" * 101, "timeZone"),
    ("15-07-2019 12:35:56.789 XYZ", None, "delayedTime"),     # unknown zone inside
    ("15-07-2019 12:35:56.789 Mars/Olympus", None, "delayedTime"),
    ("15-07-2019 12:35:56.789 IST Asia/Kolkata", None, "delayedTime"),  # two zones
    ("31-02-2019 12:00:00", "IST", "delayedTime"),
    ("31-02-2019 12:00:00 IST", None, "delayedTime"),
    ("2019-02-31T12:00:00", None, "delayedTime"),
    ("15-13-2019 12:00:00", None, "delayedTime"),
    ("15-07-2019 25:00:00", None, "delayedTime"),
    ("15-FOO-2019 12:00:00", None, "delayedTime"),
    ("01-01-0001 00:00:00 IST", None, "delayedTime"),         # before year 1 in UTC
    ("01-01-0001 00:00:00", "Asia/Kolkata", "delayedTime"),
    ("tomorrow", None, "delayedTime"),
    ("", None, "delayedTime"),
    ("   ", "IST", "delayedTime"),
    ("1" * 101, None, "delayedTime"),
    ("15-07-2019 12:35:56.789" + " " * 90, None, "delayedTime"),  # long counts padding
    ("99999999999999999999", None, "delayedTime"),
    (10**20, None, "delayedTime"),
    (True, None, "delayedTime"),
    (1.5e12, None, "delayedTime"),
    (None, None, "delayedTime"),
])
def test_bad_delayed_times_are_400_naming_the_field(value, zone, field):
    refused(field, parse_delayed, value, zone)


def test_unparseable_time_shows_the_accepted_forms():
    message = refused("delayedTime", parse_delayed, "tomorrow", None).message
    assert "dd-MM-yyyy HH:mm:ss" in message and "dd-MMM-yyyy" in message
    assert "ISO 8601" in message and "epoch milliseconds" in message
    assert "Asia/Kolkata" in refused("timeZone", parse_delayed, "x", "Nowhere").message


def test_field_name_follows_the_caller():
    with pytest.raises(APIError) as info:
        parse_delayed("nonsense", None, field="startTime")
    assert info.value.field == "startTime" and info.value.message.startswith("startTime: ")


def test_zones():
    assert resolve_zone("IST").utcoffset(None).total_seconds() == 5.5 * 3600
    assert resolve_zone("utc").utcoffset(None).total_seconds() == 0
    assert resolve_zone("GMT").utcoffset(None).total_seconds() == 0
    assert resolve_zone("-03:30").utcoffset(None).total_seconds() == -3.5 * 3600
    assert resolve_zone("Asia/Kolkata") == ZoneInfo("Asia/Kolkata")
    assert resolve_zone("Etc/GMT+5") == ZoneInfo("Etc/GMT+5")


# -- cron patterns ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fixed", "Fixed", "FIXED", " fixed "])
def test_seed_fixed_pattern(kind):
    assert cron_expression(kind, hour="4", day="6") == "0 4 6 * *"
    assert cron_expression(kind, hour="5", day="7") == "0 5 7 * *"  # the seed's reschedule


@pytest.mark.parametrize("fields, expected", [
    ({"hour": 4}, "0 4 * * *"),
    ({"minute": "30"}, "30 * * * *"),
    ({"minute": "0", "hour": "0", "day": "1", "month": "1"}, "0 0 1 1 *"),
    ({"hour": "9", "weekday": "1-5"}, "0 9 * * 1-5"),
    ({"minute": "0,30", "hour": " 08 "}, "0,30 8 * * *"),
    ({"hour": "1,15", "day": "1-5,20"}, "0 1,15 1-5,20 * *"),
    ({"minute": "*", "hour": "3"}, "* 3 * * *"),
    ({"day": "29", "month": "2"}, "0 * 29 2 *"),  # leap years only, but it fires
    ({"hour": "23", "day": "31", "month": "1-12"}, "0 23 31 1-12 *"),
    ({"weekday": 0}, "0 * * * 0"),
    ({"day": "30,31", "month": "2,4"}, "0 * 30,31 2,4 *"),  # April has a 30th
])
def test_fixed_patterns(fields, expected):
    assert cron_expression("fixed", **fields) == expected


@pytest.mark.parametrize("fields, expected", [
    ({"minute": "15"}, "*/15 * * * *"),
    ({"hour": "2"}, "0 */2 * * *"),
    ({"day": "3"}, "0 0 */3 * *"),
    ({"month": 2}, "0 0 1 */2 *"),
    ({"minute": 1}, "*/1 * * * *"),
])
def test_interval_patterns(fields, expected):
    assert cron_expression("interval", **fields) == expected
    assert cron_expression("Interval", **fields) == expected


@pytest.mark.parametrize("pattern, expected", [
    ("*/5 * * * *", "*/5 * * * *"),
    ("  0  4   6 * *  ", "0 4 6 * *"),
    ("0 9 * * mon-fri", "0 9 * * mon-fri"),
    ("0 0 L * *", "0 0 L * *"),
    ("0 0 29 2 *", "0 0 29 2 *"),
])
def test_raw_cron_patterns(pattern, expected):
    assert cron_expression("cron", cron=pattern) == expected


@pytest.mark.parametrize("kind, fields, field", [
    ("weird", {"hour": "4"}, "cronPatternType"),
    ("", {"hour": "4"}, "cronPatternType"),
    (None, {"hour": "4"}, "cronPatternType"),
    ("f" * 101, {"hour": "4"}, "cronPatternType"),
    ("fixed", {}, "cronPatternType"),
    ("interval", {}, "cronPatternType"),
    ("fixed", {"hour": "24"}, "hour"),
    ("fixed", {"hour": 24}, "hour"),
    ("fixed", {"hour": -1}, "hour"),
    ("fixed", {"hour": 10**5000}, "hour"),  # no text for that int: checked first
    ("fixed", {"minute": "-1"}, "minute"),
    ("fixed", {"minute": "60"}, "minute"),
    ("fixed", {"day": "0"}, "day"),
    ("fixed", {"day": "32"}, "day"),
    ("fixed", {"month": "13"}, "month"),
    ("fixed", {"weekday": "7"}, "weekday"),
    ("fixed", {"hour": "4", "day": "6", "weekday": "5"}, "weekday"),
    ("fixed", {"hour": "5-1"}, "hour"),
    ("fixed", {"hour": "1,,2"}, "hour"),
    ("fixed", {"hour": "*/2"}, "hour"),
    ("fixed", {"hour": "four"}, "hour"),
    ("fixed", {"hour": "4.0"}, "hour"),
    ("fixed", {"hour": "٤"}, "hour"),        # an Arabic-Indic four: digits are ASCII
    ("fixed", {"hour": ""}, "hour"),
    ("fixed", {"hour": True}, "hour"),
    ("fixed", {"hour": 4.0}, "hour"),
    ("fixed", {"hour": ["4"]}, "hour"),
    ("fixed", {"hour": "1," * 50 + "1"}, "hour"),  # 101 characters
    ("fixed", {"day": "31", "month": "2"}, "day"),   # never fires
    ("fixed", {"day": "30,31", "month": "2"}, "day"),
    ("fixed", {"hour": "4"}, "cron"),  # with cron= below
    ("interval", {"minute": "15", "hour": "2"}, "hour"),
    ("interval", {"hour": "2", "day": "1"}, "day"),
    ("interval", {"minute": "0"}, "minute"),
    ("interval", {"minute": "60"}, "minute"),
    ("interval", {"hour": "24"}, "hour"),
    ("interval", {"day": "32"}, "day"),
    ("interval", {"month": "13"}, "month"),
    ("interval", {"hour": "1-5"}, "hour"),
    ("interval", {"weekday": "2"}, "weekday"),
    ("cron", {}, "cron"),
    ("cron", {"hour": "4"}, "hour"),
])
def test_bad_patterns_are_400_naming_the_field(kind, fields, field):
    if field == "cron" and kind == "fixed":
        fields = {**fields, "cron": "* * * * *"}
    refused(field, cron_expression, kind, **fields)


@pytest.mark.parametrize("pattern", [
    "bad", "* * * *", "* * * * * *", "@hourly", "61 * * * *", "*/0 * * * *",
    "H * * * *", "0 0 30 2 *", "* * * * * " + "*" * 100, "", 5,
])
def test_bad_raw_cron_is_400_naming_cron(pattern):
    refused("cron", cron_expression, "cron", cron=pattern)


def test_weekday_and_day_together_say_why():
    assert "either" in refused("weekday", cron_expression, "fixed", day="13", weekday="5").message


# -- recurrence limits --------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    (0, 0), (1, 1), ("0", 0), (" 12 ", 12), (2**31 - 1, 2**31 - 1),
])
def test_recurrence_limit(value, expected):
    assert recurrence_limit(value) == expected


@pytest.mark.parametrize("value", [
    -1, "-1", pytest.param(-(10**5000), id="huge"), "x", 1.5, "1.5", 2.0, True, None, "", "+3", "٣", 2**31, "9" * 101, [1],
])
def test_bad_recurrence_limit_is_400(value):
    refused("recurrenceLimit", recurrence_limit, value)


# -- slots --------------------------------------------------------------------------------
def test_seed_pattern_next_slot_in_ist():
    cron = cron_expression("fixed", hour="4", day="6")
    # 04:00 IST on the 6th is 22:30 UTC on the 5th.
    assert iso(next_slot(cron, ms("2024-01-01T00:00:00Z"), "IST")) == "2024-01-05T22:30:00Z"
    assert iso(next_slot(cron, ms("2024-01-05T22:30:00Z"), "IST")) == "2024-02-05T22:30:00Z"
    assert iso(next_slot(cron, ms("2024-01-05T22:29:59.999Z"), "IST")) == "2024-01-05T22:30:00Z"
    assert iso(next_slot(cron, ms("2024-01-01T00:00:00Z"), "Asia/Kolkata")) == "2024-01-05T22:30:00Z"
    assert iso(next_slot(cron, ms("2024-01-01T00:00:00Z"), "UTC")) == "2024-01-06T04:00:00Z"


def test_next_slot_is_strictly_after():
    slot = ms("2024-01-01T04:00:00Z")
    assert next_slot("0 4 * * *", slot, "UTC") == ms("2024-01-02T04:00:00Z")
    assert next_slot("0 4 * * *", slot + 1, "UTC") == ms("2024-01-02T04:00:00Z")
    assert next_slot("0 4 * * *", slot - 1, "UTC") == slot
    assert next_slot("* * * * *", slot + 500, "UTC") == slot + 60_000
    # Chained, the slots move forward: no slot is returned twice.
    t, seen = slot, []
    for _ in range(5):
        t = next_slot("*/15 * * * *", t, "UTC")
        seen.append(t)
    assert seen == [slot + k * 15 * 60_000 for k in range(1, 6)]


def test_slots_in_daylight_saving_changes():
    berlin = "Europe/Berlin"
    # Spring forward (31 March 2024, 02:00 -> 03:00): a daily 02:30 fires once, at 03:00 CEST.
    days = slots_between("30 2 * * *", ms("2024-03-29T12:00:00Z"), ms("2024-04-02T12:00:00Z"),
                         berlin, 10)
    assert [iso(t) for t in days] == [
        "2024-03-30T01:30:00Z", "2024-03-31T01:00:00Z",
        "2024-04-01T00:30:00Z", "2024-04-02T00:30:00Z"]
    # ... and an hourly pattern has no slot in the missing hour.
    hours = slots_between("30 * * * *", ms("2024-03-30T23:00:00Z"), ms("2024-03-31T03:00:00Z"),
                          berlin, 10)
    assert [iso(t) for t in hours] == [
        "2024-03-30T23:30:00Z", "2024-03-31T00:30:00Z",
        "2024-03-31T01:30:00Z", "2024-03-31T02:30:00Z"]
    # Fall back (27 October 2024, 03:00 -> 02:00): a daily 02:30 fires once, the first time...
    days = slots_between("30 2 * * *", ms("2024-10-26T12:00:00Z"), ms("2024-10-28T12:00:00Z"),
                         berlin, 10)
    assert [iso(t) for t in days] == ["2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"]
    assert next_slot("30 2 * * *", ms("2024-10-27T00:30:00Z"), berlin) == ms("2024-10-28T01:30:00Z")
    # ... and an hourly one fires in both 02:30s, an hour apart.
    hours = slots_between("30 * * * *", ms("2024-10-26T23:00:00Z"), ms("2024-10-27T03:00:00Z"),
                          berlin, 10)
    assert [iso(t) for t in hours] == [
        "2024-10-26T23:30:00Z", "2024-10-27T00:30:00Z",
        "2024-10-27T01:30:00Z", "2024-10-27T02:30:00Z"]


def test_slots_between_bounds_and_limit():
    start = ms("2024-01-01T00:00:00Z")
    every15 = cron_expression("interval", minute="15")
    # (from, to]: the slot at from is not in it, the one at to is.
    got = slots_between(every15, start, start + 3_600_000, "UTC", 100)
    assert got == [start + k * 900_000 for k in range(1, 5)]
    assert slots_between(every15, start, start + 3_600_000, "UTC", 2) == got[:2]
    assert slots_between(every15, start, start + 899_999, "UTC", 10) == []
    assert slots_between(every15, start, start, "UTC", 10) == []
    assert slots_between(every15, start + 1, start, "UTC", 10) == []
    # A week of downtime, a one-minute pattern: the limit keeps the answer small.
    assert len(slots_between("* * * * *", start, start + 7 * 86_400_000, "UTC", 3)) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError):
            slots_between(every15, start, start + 1, "UTC", bad)


def test_slots_with_a_bad_zone_are_400_naming_timezone():
    refused("timeZone", next_slot, "* * * * *", 0, "Mars/Olympus")
    refused("timeZone", slots_between, "* * * * *", 0, 1, "nowhere", 1)

"""Time parsing shared by connector and platform: one answer per input, on both paths."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pyconnector.times import format_iso, format_iso_many, format_tcup, parse_time, parse_times

CASES = {
    "03-JUL-2015 13:10:00 IST": 1435909200000,
    "03-jul-2015 07:40:00.5 UTC": 1435909200500,
    "03-JUL-2015 13:10:00 +0530": 1435909200000,
    "03-07-2015 07:40:00": 1435909200000,
    "03-JUL-2015": 1435881600000,
    "2015-07-03T07:40:00Z": 1435909200000,
    "2015-07-03 13:10:00+05:30": 1435909200000,
    "2015-07-03T07:40:00.123": 1435909200123,
    "1435909200000": 1435909200000,
    "2015": 2015,  # digits are epoch milliseconds, never a year
}


@pytest.mark.parametrize("text,ms", CASES.items())
def test_one_value_and_many_agree(text: str, ms: int) -> None:
    assert parse_time(text) == ms
    values, bad = parse_times([text, "2015-07-03T07:40:00Z"])
    assert bad is None and values.tolist() == [ms, 1435909200000]


@pytest.mark.parametrize("bad", ["yesterday", "32-JAN-2015 10:00:00", "03-XYZ-2015 10:00",
                                 "03-JUL-2015 10:00:00 QQQ", "", "99999999999999999999"])
def test_bad_values_are_refused_and_located(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_time(bad)
    assert parse_times(["2015-07-03T07:40:00Z", bad])[1] == 1


def test_numbers_datetimes_and_formatting() -> None:
    assert parse_time(1435909200000) == 1435909200000
    assert parse_time(datetime(2015, 7, 3, 7, 40, tzinfo=timezone.utc)) == 1435909200000
    assert format_tcup(1435909200000) == "03-JUL-2015 07:40:00.000 UTC"
    assert format_iso(1435909200123) == "2015-07-03T07:40:00.123Z"
    assert format_iso(1435909200000) == "2015-07-03T07:40:00Z"  # no .000
    with pytest.raises(ValueError):
        parse_time(True)


@pytest.mark.parametrize("ms", [1435909200000, 1435909200123, 1435909200001, 1435909200100,
                                0, -1, -1000, 253402300799999])
def test_iso_one_and_many_agree_and_read_back(ms: int) -> None:
    text = format_iso(ms)
    assert format_iso_many([ms, ms]).to_pylist() == [text, text]
    assert parse_time(text) == ms
    assert text.endswith("Z") and (".000" not in text)
    assert parse_time(format_tcup(ms)) == ms


def test_iso_many_of_nothing() -> None:
    assert format_iso_many([]).to_pylist() == []

"""CSV upload errors: every one names its line (and the column, where there is one), on
both stores, and stores nothing. Lines are limited to 1 MiB; a value holding a line break
is refused, as docs/sos.md says, so it cannot shift the line numbers of later errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sos_helper import stored_values as _stored

from pyconnector_server.sos import csvio

SOS = "/api/sos/v2.0"
CSV = {"content-type": "text/csv"}
HEADER = "time,sensor,feature,temp,status,n\n"
T = "2024-05-01T10:00:0{}Z"


def row(i: int, temp: str = "1.5", status: str = "ok", n: str = "3", sensor: str = "ts1",
        feature: str = "tf1", time: str | None = None) -> str:
    return f"{time if time is not None else T.format(i)},{sensor},{feature},{temp},{status},{n}\n"


GOOD = [row(i) for i in range(5)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           app_opener: Any) -> Iterator[Any]:
    """One seeded app per store: ts1 on tf1 reports temp (quantity), status (text), n (count)."""
    db = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with app_opener(tmp_path_factory.mktemp("csv-messages"), db) as api:
        for f in ("tf1", "tf2"):
            assert api.post(f"{SOS}/features", json={"name": f}).json()["code"] == 201
        assert api.post(f"{SOS}/sensors", json={"name": "ts1", "feature": "tf1", "outputs": [
            {"name": "temp", "type": "quantity"}, {"name": "status", "type": "text"},
            {"name": "n", "type": "count"}]}).json()["code"] == 201
        yield api


@pytest.fixture
def sos(shared: Any) -> Iterator[Any]:
    yield shared
    assert shared.delete(f"{SOS}/observations", params={"feature": "tf1"}).status_code == 200


def _upload(api: Any, text: str | bytes) -> dict[str, Any]:
    r = api.post(f"{SOS}/observations/csv", content=text, headers=CSV)
    assert r.status_code == 200, r.text
    return r.json()


def _refused(api: Any, text: str | bytes, line: int, field: str | None,
             code: int = 400) -> dict[str, Any]:
    body = _upload(api, text)
    assert body["code"] == code, body
    assert body["line"] == line, body
    assert body["message"].startswith(f"line {line}: "), body
    if field is None:
        assert "field" not in body, body
    else:
        assert body["field"] == field, body
        assert body["message"].startswith(f"line {line}: {field}: "), body
    assert _stored(api) == 0
    return body


# -- every kind of error, with good lines around it ---------------------------------------------
ERRORS = [
    ("unparseable time", row(9, time="yesterday"), "time", 400),
    ("empty time", row(9, time=""), "time", 400),
    ("unknown sensor", row(9, sensor="nope"), "sensor", 404),
    ("empty sensor", row(9, sensor=""), "sensor", 400),
    ("sensor of another feature", row(9, feature="tf2"), "feature", 400),
    ("not a number", row(9, temp="warm"), "temp", 400),
    ("infinite number", row(9, temp="inf"), "temp", 400),
    ("count not an integer", row(9, n="2.5"), "n", 400),
    ("too few columns", T.format(9) + ",ts1,tf1,1.5\n", "status", 400),
    ("too many columns", row(9).rstrip("\n") + ",extra\n", None, 400),
    ("NUL in time", row(9, time=T.format(9) + "\x00"), "time", 400),
    ("NUL in sensor", row(9, sensor="ts\x001"), "sensor", 400),
    ("NUL in feature", row(9, feature="tf\x001"), "feature", 400),
    ("NUL in a text value", row(9, status="o\x00k"), "status", 400),
    ("NUL in a number", row(9, temp="1\x00"), "temp", 400),
    ("NUL in a quoted value", row(9, status='"o\x00k"'), "status", 400),
    ("line break in a quoted value", row(9, status='"o\nk"'), "status", 400),
    ("CR in a quoted value", row(9, status='"o\rk"'), "status", 400),
    ("quote left open", row(9, status='"ok'), "status", 400),
]


@pytest.mark.parametrize("bad, field, code", [pytest.param(*e[1:], id=e[0]) for e in ERRORS])
@pytest.mark.parametrize("at", [2, 5])
def test_every_error_names_its_line_and_column(sos: Any, at: int, bad: str,
                                               field: str | None, code: int) -> None:
    lines = [*GOOD[:at - 2], bad, *GOOD[at - 2:]]
    _refused(sos, HEADER + "".join(lines), at, field, code)


@pytest.mark.parametrize("raw, line, field", [
    (b"\xff\xfe" + GOOD[0].encode(), 2, "time"),
    (GOOD[0].encode() + b"2024-05-01T10:00:09Z,ts1,tf1,1.5,\xe9t\xe9,3\n", 3, "status"),
])
def test_invalid_utf8_names_line_and_column(sos: Any, raw: bytes, line: int,
                                            field: str) -> None:
    _refused(sos, HEADER.encode() + raw + GOOD[1].encode(), line, field)


def test_nul_in_the_header_is_refused_on_line_1(sos: Any) -> None:
    _refused(sos, "time,sensor,te\x00mp\n" + GOOD[0], 1, None)


# -- quoted line breaks ----------------------------------------------------------------------------
def test_quoted_line_break_is_refused_on_its_own_line_not_a_later_one(sos: Any) -> None:
    """It used to be stored, and a bad value three lines on was reported on line 6, not 5."""
    text = HEADER + GOOD[0] + row(1, status='"two\nlines"') + GOOD[2] + row(3, temp="x")
    _refused(sos, text, 3, "status")


def test_quoted_line_break_in_the_header_is_refused(sos: Any) -> None:
    body = _upload(sos, 'time,sensor,"te\nmp"\n' + GOOD[0])
    assert body["code"] == 400 and body["line"] == 1, body
    assert _stored(sos) == 0


@pytest.mark.parametrize("block", [64, 100, 128, 256])
def test_quoted_line_break_across_a_block_boundary_names_its_line(
        sos: Any, monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """Arrow splits blocks at line breaks; one inside quotes breaks the block apart, and the
    error must still name the line where the value starts."""
    monkeypatch.setattr(csvio, "BLOCK_BYTES", block)
    rows = [row(i % 10) for i in range(12)]
    rows[7] = row(7, status='"a value\nwith a break, and, commas"')
    _refused(sos, HEADER + "".join(rows), 9, "status")


def test_quoted_commas_and_quotes_without_line_breaks_are_stored(sos: Any) -> None:
    text = HEADER + row(0, status='"a, b"') + row(1, status='"say ""hi"""') + GOOD[2]
    body = _upload(sos, text)
    assert body["code"] == 201 and body["values"] == 9, body
    r = sos.get(f"{SOS}/observations", params={"sensor": "ts1", "property": "status",
                                               "timeFormat": "epoch"})
    values = [rec["output"][0]["value"] for item in r.json()["observations"]
              for rec in item["record"]]
    assert values == ["a, b", 'say "hi"', "ok"]


# -- long lines ------------------------------------------------------------------------------------
def _line_of(size: int, i: int = 1) -> str:
    """A data line of exactly ``size`` bytes (line break included), long in `status`."""
    head, tail = f"{T.format(i)},ts1,tf1,1.5,", ",3\n"
    return head + "s" * (size - len(head) - len(tail)) + tail


def test_line_at_the_limit_is_stored(sos: Any) -> None:
    line = _line_of(csvio.LINE_MAX_BYTES)
    assert len(line.encode()) == csvio.LINE_MAX_BYTES
    body = _upload(sos, HEADER + GOOD[0] + line + GOOD[2])
    assert body["code"] == 201 and body["records"] == 3, body


@pytest.mark.parametrize("size", [csvio.LINE_MAX_BYTES + 1, 3 << 20, 5 << 20])
def test_line_over_the_limit_names_line_and_column(sos: Any, size: int) -> None:
    """Not Arrow's "straddling object straddles two block boundaries", which named none."""
    text = HEADER + GOOD[0] + GOOD[1] + _line_of(size, 2) + GOOD[3]
    body = _refused(sos, text, 4, "status")
    assert f"{size:,} bytes" in body["message"] and "1,048,576" in body["message"], body


def test_last_line_over_the_limit_without_a_line_break(sos: Any) -> None:
    line = _line_of(csvio.LINE_MAX_BYTES + 10).rstrip("\n")
    _refused(sos, HEADER + GOOD[0] + line, 3, "status")


def test_header_over_the_limit_is_refused_on_line_1(sos: Any) -> None:
    body = _upload(sos, "time,sensor," + "p" * (2 << 20) + "\n" + GOOD[0])
    assert body["code"] == 400 and body["line"] == 1, body


def test_first_of_a_nul_and_a_long_line_is_reported(sos: Any) -> None:
    text = HEADER + GOOD[0] + _line_of(2 << 20, 1) + row(2, status="a\x00")
    _refused(sos, text, 3, "status")
    text = HEADER + GOOD[0] + row(2, status="a\x00") + _line_of(2 << 20, 1)
    body = _refused(sos, text, 3, "status")
    assert "NUL" in body["message"]


@pytest.mark.parametrize("first", ["utf-8", "line break"])
def test_first_of_bad_utf8_and_a_quoted_line_break_is_reported(sos: Any, first: str) -> None:
    utf8 = b"2024-05-01T10:00:09Z,ts1,tf1,1.5,\xe9t\xe9,3\n"
    brk = row(8, status='"a\nb"').encode()
    bad = [utf8, brk] if first == "utf-8" else [brk, utf8]
    text = HEADER.encode() + GOOD[0].encode() + bad[0] + GOOD[1].encode() + bad[1]
    body = _refused(sos, text, 3, "status")
    assert ("UTF-8" in body["message"]) == (first == "utf-8"), body


def test_long_last_line_ending_on_a_read_boundary(sos: Any) -> None:
    """The file ends exactly where a 1 MiB read of the scan does, without a line break."""
    text = HEADER + GOOD[0]
    line = _line_of(2 * (1 << 20) - len(text) + 1).rstrip("\n")
    assert len((text + line).encode()) == 2 << 20
    _refused(sos, text + line, 3, "status")

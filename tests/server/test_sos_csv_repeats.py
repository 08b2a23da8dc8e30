"""CSV uploads that repeat a (sensor, time): the rows are merged into one record (for each
property the last value in the file wins) and the answer says so, on both stores; a file
written with another delimiter is refused naming it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sos_helper import stored_values as _stored

from pyconnector_server.sos import csvio

SOS = "/api/sos/v2.0"
CSV = {"content-type": "text/csv"}
HEADER = "time,sensor,temp,status\n"
T = "2024-05-01T10:00:0{}Z"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           app_opener: Any) -> Iterator[Any]:
    """One app per store: ts1 and ts2 on tf1 report temp (quantity) and status (text)."""
    db = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with app_opener(tmp_path_factory.mktemp("csv-repeats"), db) as api:
        assert api.post(f"{SOS}/features", json={"name": "tf1"}).json()["code"] == 201
        for s in ("ts1", "ts2"):
            assert api.post(f"{SOS}/sensors", json={"name": s, "feature": "tf1", "outputs": [
                {"name": "temp", "type": "quantity"},
                {"name": "status", "type": "text"}]}).json()["code"] == 201
        yield api


@pytest.fixture
def sos(shared: Any) -> Iterator[Any]:
    yield shared
    assert shared.delete(f"{SOS}/observations", params={"feature": "tf1"}).status_code == 200


def _upload(api: Any, text: str) -> dict[str, Any]:
    r = api.post(f"{SOS}/observations/csv", content=text, headers=CSV)
    assert r.status_code == 200, r.text
    return r.json()


def _records(api: Any, sensor: str) -> list[tuple[str, dict[str, Any]]]:
    r = api.get(f"{SOS}/observations", params={"sensor": sensor})
    assert r.status_code == 200, r.text
    return [(rec["starttime"], {o["name"]: o["value"] for o in rec["output"]})
            for item in r.json()["observations"] for rec in item["record"]]


def test_a_file_without_repeats_says_what_it_stored_as_before(sos: Any) -> None:
    body = _upload(sos, HEADER + "".join(f"{T.format(i)},ts1,{i},ok\n" for i in range(3)))
    assert body["code"] == 201, body
    assert body["message"] == "3 record(s), 6 value(s) stored"
    assert (body["records"], body["values"], body["rows"], body["merged"]) == (3, 6, 3, 0)
    assert _stored(sos) == 6


def test_a_repeated_row_is_merged_into_one_record_the_last_value_winning(sos: Any) -> None:
    text = HEADER + f"{T.format(0)},ts1,1.0,first\n{T.format(0)},ts1,2.0,last\n"
    body = _upload(sos, text)
    assert body["code"] == 201, body
    assert (body["records"], body["values"], body["rows"], body["merged"]) == (1, 2, 2, 1)
    assert body["message"].startswith("1 record(s), 2 value(s) stored; 1 row(s) repeated the "
                                      "sensor and time of an earlier row and were merged")
    assert "the last value in the file wins" in body["message"]
    assert _stored(sos) == body["values"]
    [(_, values)] = _records(sos, "ts1")
    assert values == {"temp": 2.0, "status": "last"}


def test_repeats_merge_property_by_property(sos: Any) -> None:
    # The second row has no status: the record keeps the first row's, and the later temp.
    text = HEADER + f"{T.format(0)},ts1,1.0,kept\n{T.format(0)},ts1,2.0,\n{T.format(1)},ts1,3,\n"
    body = _upload(sos, text)
    assert (body["records"], body["values"], body["merged"]) == (2, 3, 1), body
    assert _stored(sos) == 3
    assert [v for _, v in _records(sos, "ts1")] == [{"temp": 2.0, "status": "kept"},
                                                    {"temp": 3.0}]


def test_repeats_are_counted_when_times_go_back(sos: Any) -> None:
    # Not in time order: the repeat of 10:00:02 comes after a later and an earlier time,
    # and ts2 shares times with ts1 without repeating anything.
    rows = [(2, "ts1", 1), (5, "ts1", 2), (1, "ts1", 3), (2, "ts1", 4), (2, "ts2", 5),
            (1, "ts2", 6), (2, "ts2", 7), (2, "ts1", 8)]
    body = _upload(sos, HEADER + "".join(f"{T.format(i)},{s},{v},\n" for i, s, v in rows))
    assert (body["records"], body["values"], body["rows"], body["merged"]) == (5, 5, 8, 3), body
    assert _stored(sos) == 5
    assert [v["temp"] for _, v in _records(sos, "ts1")] == [3.0, 8.0, 2.0]
    assert [v["temp"] for _, v in _records(sos, "ts2")] == [6.0, 7.0]


def test_repeats_across_read_blocks_are_counted(sos: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Blocks of 64 bytes: each holds a row or two, so the repeats meet across blocks.
    monkeypatch.setattr(csvio, "BLOCK_BYTES", 64)
    blocks: list[int] = []
    track = csvio._track_order
    monkeypatch.setattr(csvio, "_track_order",
                        lambda out, s, t: (blocks.append(len(s)), track(out, s, t)))
    rows = [f"{T.format(i // 2)},ts1,{i},\n" for i in range(8)]  # every time twice
    body = _upload(sos, HEADER + "".join(rows))
    assert (body["records"], body["values"], body["rows"], body["merged"]) == (4, 4, 8, 4), body
    assert [v["temp"] for _, v in _records(sos, "ts1")] == [1.0, 3.0, 5.0, 7.0]
    assert len(blocks) >= 4 and sum(blocks) == 8, blocks


def test_rows_without_values_count_as_records_and_merge_nothing(sos: Any) -> None:
    text = HEADER + f"{T.format(0)},ts1,,\n{T.format(0)},ts1,1,\n"
    body = _upload(sos, text)
    assert (body["records"], body["values"], body["merged"]) == (2, 1, 0), body


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_file_with_another_delimiter_is_refused_naming_it(sos: Any, sep: str) -> None:
    text = sep.join(["time", "sensor", "temp"]) + "\n" + sep.join([T.format(0), "ts1", "1"])
    body = _upload(sos, text + "\n")
    assert (body["code"], body["line"]) == (400, 1), body
    assert body["message"].startswith(f"line 1: the columns are separated by {sep!r}, "
                                      "not by commas"), body
    assert "missing column" not in body["message"]
    assert _stored(sos) == 0


def test_a_one_column_header_without_another_delimiter_still_says_what_is_missing(
        sos: Any) -> None:
    body = _upload(sos, "time\n" + T.format(0) + "\n")
    assert body["code"] == 400 and "missing column 'sensor'" in body["message"], body

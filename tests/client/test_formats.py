"""One renderer for every service: json, table, dataframe, csv."""

from __future__ import annotations

import pandas as pd
import pytest

import pyconnector
from pyconnector.formats import render


def test_object_renders_as_one_row() -> None:
    data = {"sensors": 2, "features": 1}
    assert render(data) is data
    assert render(data, "dataframe").to_dict("records") == [data]
    table = render(data, "table")
    assert "| sensors | features |" in table and "|    2    |    1     |" in table
    assert render(data, "csv") == "sensors,features\n2,1\n"


def test_list_of_objects_and_rows_picker() -> None:
    data = {"results": [{"a": 1, "b": {"x": "é"}}, {"a": 2}]}
    frame = render(data, "dataframe", rows=lambda d: d["results"])
    assert frame["a"].tolist() == [1, 2]
    table = render(data, "table", rows=lambda d: d["results"])
    assert '{"x": "é"}' in table


def test_dataframe_to_json_has_iso_times_and_none() -> None:
    frame = pd.DataFrame({"time": pd.to_datetime(["2015-07-03T07:40:00Z", None], utc=True),
                          "v": [1.5, None]})
    assert render(frame, "json") == [{"time": "2015-07-03T07:40:00+00:00", "v": 1.5},
                                     {"time": None, "v": None}]


def test_tables_and_csv_write_times_as_iso_with_z() -> None:
    frame = pd.DataFrame({"time": pd.to_datetime(
        ["2015-07-03T07:40:00Z", None, "2015-07-03T07:40:00.5Z"], utc=True,
        format="ISO8601").astype("datetime64[ms, UTC]"), "v": [1, 2, 3]})
    assert render(frame, "csv") == ("time,v\n2015-07-03T07:40:00Z,1\n,2\n"
                                    "2015-07-03T07:40:00.500Z,3\n")
    table = render(frame, "table")
    assert "| 2015-07-03T07:40:00Z |" in table.replace("   ", " ").replace("  ", " ")
    assert "| 2015-07-03T07:40:00.500Z | 3 |" in table
    naive = pd.DataFrame({"t": pd.to_datetime(["2015-07-03 07:40:00"])})  # naive is UTC
    assert render(naive, "csv") == "t\n2015-07-03T07:40:00Z\n"


def test_times_written_as_text_become_utc_timestamps() -> None:
    data = [{"name": "a", "created": "03-JUL-2015 13:10:00 IST",
             "updated": "03-JUL-2015 07:40:00.120 UTC"}, {"name": "b", "created": None}]
    frame = render(data, "dataframe", times=("created", "updated", "absent"))
    assert str(frame["created"].dtype) == "datetime64[ms, UTC]"
    assert frame["created"].iloc[0] == pd.Timestamp("2015-07-03T07:40:00Z")
    assert frame["created"].isna().tolist() == [False, True]
    assert "absent" not in frame.columns
    assert render(data, "csv", times=("created", "updated")) == (
        "name,created,updated\na,2015-07-03T07:40:00Z,2015-07-03T07:40:00.120Z\nb,,\n")
    assert render(data, "json", times=("created",)) is data  # JSON as the platform wrote it
    missing = pd.DataFrame({"created": pd.array([pd.NA, "2015-07-03T07:40:00Z"], "string")})
    assert render(missing, "csv", times=("created",)) == 'created\n""\n2015-07-03T07:40:00Z\n'


def test_unknown_response_type_is_refused() -> None:
    with pytest.raises(pyconnector.PyConnectorError, match="responseType must be one of"):
        render({}, "xml")

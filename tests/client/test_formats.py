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


def test_unknown_response_type_is_refused() -> None:
    with pytest.raises(pyconnector.PyConnectorError, match="responseType must be one of"):
        render({}, "xml")

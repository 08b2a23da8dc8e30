"""One place that turns any service's result into ``json``, ``table``, ``dataframe`` or ``csv``.

``json`` is the parsed JSON as Python objects; ``table`` a PrettyTable string;
``dataframe`` a pandas DataFrame; ``csv`` CSV text.

The type aliases below are the ones the connectors' signatures use, so that a type checker
knows ``responseType='dataframe'`` gives a ``pandas.DataFrame`` and ``'table'`` a ``str``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal, TypeAlias, get_args

import pandas as pd

from .errors import PyConnectorError

ResponseType: TypeAlias = Literal["json", "table", "dataframe", "csv"]
"""What a read returns: parsed JSON, a PrettyTable string, a DataFrame or CSV text."""
TextType: TypeAlias = Literal["table", "csv"]
"""The response types that are text (``str``)."""
# JSON as the platform answers it. Containers hold Any: a recursive alias would make every
# caller narrow each level before indexing.
JSON: TypeAlias = dict[str, Any] | list[Any] | str | int | float | bool | None
JSONObject: TypeAlias = dict[str, Any]
"""One JSON object (a feature, a sensor, a ``{code, message}`` answer, a page…)."""
JSONRecords: TypeAlias = list[dict[str, Any]]
"""A JSON list of objects (features, sensors, 207 per-item answers, records…)."""

RESPONSE_TYPES: tuple[ResponseType, ...] = get_args(ResponseType)


def check_response_type(response_type: str | None) -> ResponseType:
    """``response_type`` in lower case (``None`` is ``json``); raise if it is none of ours."""
    rt = (response_type or "json").lower()
    if rt not in RESPONSE_TYPES:
        raise PyConnectorError(f"responseType must be one of {', '.join(RESPONSE_TYPES)}; "
                               f"got {response_type!r}")
    return rt


def to_frame(data: Any) -> pd.DataFrame:
    """A DataFrame of JSON: a list of objects is rows; one object is one row."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, dict):
        data = [data]
    values: list[Any] = data if isinstance(data, list) else [data]
    frame: pd.DataFrame  # pandas-stubs answers Any for a list of Any
    if all(isinstance(x, dict) for x in values):
        frame = pd.DataFrame.from_records(values) if values else pd.DataFrame()
    else:
        frame = pd.DataFrame({"value": values})
    return frame


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA \
            or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def to_table(frame: pd.DataFrame) -> str:
    """A PrettyTable rendering of ``frame``."""
    from prettytable import PrettyTable

    table = PrettyTable()
    table.field_names = [str(c) for c in frame.columns] or ["(empty)"]
    for row in frame.itertuples(index=False, name=None):
        table.add_row([_cell(v) for v in row])
    return table.get_string()


def to_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Records of ``frame``: timestamps as ISO 8601, missing values as None."""
    out = frame.astype(object).where(frame.notna(), None)
    records: list[dict[str, Any]] = out.to_dict(orient="records")
    for rec in records:
        for k, v in rec.items():
            if isinstance(v, pd.Timestamp):
                rec[k] = v.isoformat()
    return records


def render(data: JSON | pd.DataFrame, response_type: str = "json",
           rows: Callable[[Any], Any] | None = None) -> JSON | pd.DataFrame:
    """Shape ``data`` (JSON, or a DataFrame) as asked. ``rows`` picks, from a JSON
    envelope, the part that is tabular (e.g. the list inside ``{"results": [...]}``)."""
    rt = check_response_type(response_type)
    if rt == "json":
        return to_json(data) if isinstance(data, pd.DataFrame) else data
    frame = to_frame(rows(data) if rows and not isinstance(data, pd.DataFrame) else data)
    if rt == "dataframe":
        return frame
    if rt == "table":
        return to_table(frame)
    return frame.to_csv(index=False)

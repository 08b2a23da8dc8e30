"""One place that turns any service's result into ``json``, ``table``, ``dataframe`` or ``csv``.

``json`` is the parsed JSON as Python objects; ``table`` a PrettyTable string;
``dataframe`` a pandas DataFrame; ``csv`` CSV text. Times have one rendering per output
(see :mod:`pyconnector.times`): as the platform wrote them in JSON, tz-aware UTC timestamps
in DataFrames, ISO 8601 with ``Z`` in tables and CSV.

The type aliases below are the ones the connectors' signatures use, so that a type checker
knows ``responseType='dataframe'`` gives a ``pandas.DataFrame`` and ``'table'`` a ``str``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias, get_args

import pandas as pd

from .errors import PyConnectorError
from .times import format_iso, format_iso_many, parse_time

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


def _ms(stamp: pd.Timestamp) -> int:
    """Epoch milliseconds of a timestamp (a naive one is UTC)."""
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


def to_times(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the named columns (times as text in any accepted form, or epoch
    milliseconds) as tz-aware UTC timestamps; columns it lacks are left out."""
    frame = frame.copy()
    for name in columns:
        if name in frame.columns:
            ms = [None if pd.isna(v) else parse_time(v) for v in frame[name]]
            frame[name] = pd.to_datetime(pd.Series(ms, index=frame.index, dtype="Int64")
                                         .astype("float64"), unit="ms", utc=True
                                         ).astype("datetime64[ms, UTC]")
    return frame


def to_csv(frame: pd.DataFrame) -> str:
    """CSV text of ``frame``: timestamp columns as ISO 8601 with ``Z``."""
    stamps = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    if stamps:
        frame = frame.copy()
        for name in stamps:
            column = frame[name]
            if column.dt.tz is None:
                column = column.dt.tz_localize("UTC")
            ok = column.notna().to_numpy()
            text = pd.Series([None] * len(column), index=frame.index, dtype=object)
            ms = column[ok].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype(
                "datetime64[ms]").view("int64")
            text[ok] = format_iso_many(ms).to_numpy(zero_copy_only=False)
            frame[name] = text
    return frame.to_csv(index=False)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA \
            or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return format_iso(_ms(value))
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
           rows: Callable[[Any], Any] | None = None,
           times: Sequence[str] = ()) -> JSON | pd.DataFrame:
    """Shape ``data`` (JSON, or a DataFrame) as asked. ``rows`` picks, from a JSON
    envelope, the part that is tabular (e.g. the list inside ``{"results": [...]}``);
    ``times`` names the columns that are times written as text, made timestamps in the
    tabular types."""
    rt = check_response_type(response_type)
    if rt == "json":
        return to_json(data) if isinstance(data, pd.DataFrame) else data
    frame = to_frame(rows(data) if rows and not isinstance(data, pd.DataFrame) else data)
    if times:
        frame = to_times(frame, times)
    if rt == "dataframe":
        return frame
    if rt == "table":
        return to_table(frame)
    return to_csv(frame)

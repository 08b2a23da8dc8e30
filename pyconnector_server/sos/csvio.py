"""Observations in CSV: the upload format, its all-or-nothing ingest, and the download.

The format (the same both ways, so a download uploads again unchanged)::

    time,sensor,feature,temperature,humidity,status
    2024-05-01T10:00:00Z,ts1,tf1,21.5,40,ok
    03-JUL-2015 13:10:00 IST,ts2,,19.0,,

* ``time`` (required): any accepted time format; ``sensor`` (required): a registered
  sensor; ``feature`` (optional): if given, the sensor's feature.
* Every other column is an observed property; an empty cell means no value. A property
  not yet known is registered as a quantity if its first value is a number, else text.
* UTF-8, comma-separated, one record per line, RFC 4180 quoting (no line breaks inside
  values). Blank lines are skipped; the line numbers in errors still count them.

The file is streamed to disk, then read in blocks of columns (pyarrow), checked
vectorised, and written in one transaction: any bad line rolls back everything and the
error names the line and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from pyconnector.times import parse_times

from ..auth import Tenant
from ..errors import APIError
from . import validate as v
from .query import Result
from .store import Prop, SosStore

# Arrow's CSV reader reads up to 32 blocks ahead, so this also caps its memory (~32 MiB).
BLOCK_BYTES = 1 << 20
REQUIRED = ("time", "sensor")


def _error(line: int, column: str, message: str, status: int = 400) -> APIError:
    return APIError(status, f"line {line}: {column}: {message}", field=column, line=line)


def _header(path: Path) -> list[str]:
    with open(path, "rb") as fh:
        first = fh.readline()  # line 1 only: a bad byte further down is reported where it is
    if not first:
        raise APIError(400, "line 1: the file is empty; expected a header "
                            "'time,sensor[,feature],<property>…'", line=1)
    try:
        header = next(csv.reader([first.decode("utf-8-sig")]))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise APIError(400, f"line 1: unreadable header: {exc}", line=1) from None
    header = [h.strip() for h in header]
    for col in REQUIRED:
        if col not in header:
            raise APIError(400, f"line 1: missing column {col!r}; the header must be "
                                "'time,sensor[,feature],<property>…'", field=col, line=1)
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise APIError(400, f"line 1: column {col!r} appears twice", field=col, line=1)
        seen.add(col)
        if col not in v.RESERVED:
            try:
                v.property_name(col, col)
            except APIError as exc:
                raise APIError(400, f"line 1: {exc.message}", field=col, line=1) from None
    if len(header) == len([c for c in header if c in v.RESERVED]):
        raise APIError(400, "line 1: no property columns after time, sensor and feature",
                       line=1)
    return header


def ingest_csv(store: SosStore, t: Tenant, path: Path) -> dict[str, Any]:
    """Store every observation of the CSV file at ``path``, or none of them."""
    header = _header(path)
    props_in_file = [c for c in header if c not in v.RESERVED]
    bad: list[Any] = []

    def on_invalid(row: Any) -> str:
        if row.actual_columns == 1 and not row.text.strip():
            return "skip"  # a line of only spaces: blank, like the empty lines pyarrow skips
        bad.append(row)
        return "error"

    def read_error(exc: Exception, done: int) -> APIError:
        if bad:
            row = bad[0]
            n = _physical_line(path, row.number, skip_spaces=False)
            short = row.actual_columns < len(header)
            missing = header[row.actual_columns] if short else None
            return APIError(400, f"line {n}: {f'{missing}: ' if short else ''}expected "
                                 f"{row.expected_columns} columns, got {row.actual_columns}",
                            field=missing, line=n)
        n = _first_undecodable_line(path)
        if n is not None:
            return APIError(400, f"line {n}: not valid UTF-8", line=n)
        return APIError(400, f"unreadable CSV after line "
                             f"{_physical_line(path, done + 1, skip_spaces=True)}: {exc}")

    try:  # opening reads the first block, so a bad first block fails here
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False,
                                           skip_rows=1, column_names=header,
                                           encoding="utf-8"),
            parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True,
                                              invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header}, strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise read_error(exc, 0) from None
    records = values = 0
    with store.db.write() as conn:
        sensors = {r.name: r for r in store.sensor_refs_in(conn, t)}
        sensor_ids = {n: r.id for n, r in sensors.items()}
        props = store.properties(conn, t)
        done = 0  # data rows already handled
        links: set[tuple[int, int]] = set()
        blocks = iter(reader)
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                raise read_error(exc, done) from None

            def line(i: int, base: int = done) -> int:
                # Physical line of data row i of this block (looked up on errors only).
                return _physical_line(path, base + i + 2, skip_spaces=True)

            n = block.num_rows
            times, bad_at = parse_times(block["time"].to_numpy(zero_copy_only=False))
            if bad_at is not None:
                raw = block["time"][bad_at].as_py()
                raise _error(line(bad_at), "time",
                             "required" if not raw.strip() else f"unparseable time {raw!r}")
            names = pd.Series(block["sensor"].to_numpy(zero_copy_only=False))
            sids = names.map(sensor_ids)
            unknown = sids.isna().to_numpy()
            if unknown.any():
                i = int(np.argmax(unknown))
                raise _error(line(i), "sensor", f"sensor {names.iat[i]!r} not found"
                             if names.iat[i] else "required", 404 if names.iat[i] else 400)
            sids = sids.to_numpy(dtype=np.int64)
            if "feature" in header:
                _check_features(block, names, sensors, line)
            for pname in props_in_file:
                cells = block[pname].to_numpy(zero_copy_only=False)
                present = cells != ""
                if not present.any():
                    continue
                prop = props.get(pname)
                if prop is None:
                    first = cells[present][0]
                    ptype = "text" if pd.isna(pd.to_numeric(first, errors="coerce")) else "quantity"
                    prop = store.ensure_property(conn, t, props, pname, ptype)
                idx = np.flatnonzero(present)
                table = _values(prop, cells[idx], sids[idx], times[idx], idx, line)
                store.write_table(conn, table)
                values += table.num_rows
                links.update((int(s), prop.id) for s in np.unique(sids[idx]))
            done += n
            records += n
        store.link_outputs(conn, links)
    return {"code": 201, "message": f"{records} record(s), {values} value(s) stored",
            "records": records, "values": values}


def _physical_line(path: Path, nth: int, skip_spaces: bool) -> int:
    """The physical line number (header = 1) of the ``nth`` line as pyarrow counts them:
    without empty lines and, for data rows (``skip_spaces``), without lines of spaces."""
    seen = 0
    with open(path, "rb") as fh:
        for physical, raw in enumerate(fh, 1):
            text = raw.rstrip(b"\r\n")
            if physical > 1 and not (text.strip() if skip_spaces else text):
                continue
            seen += 1
            if seen == nth:
                return physical
    return nth


def _first_undecodable_line(path: Path) -> int | None:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return n
    return None


def _check_features(block: pa.RecordBatch, names: pd.Series, sensors: dict[str, Any],
                    line: Any) -> None:
    given = block["feature"].to_numpy(zero_copy_only=False)
    bound = names.map({n: r.feature for n, r in sensors.items()}).to_numpy()
    wrong = (given != "") & (given != bound)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise _error(line(i), "feature", f"sensor {names.iat[i]!r} is bound to feature "
                     f"{bound[i]!r}, not {given[i]!r}")


def _values(prop: Prop, cells: np.ndarray, sids: np.ndarray, times: np.ndarray,
            idx: np.ndarray, line: Any) -> pa.Table:
    """The rows to store for one property column, or a 400 for its first bad cell."""
    num: pa.Array
    text: pa.Array
    if prop.type == "text":
        num = pa.nulls(len(cells), pa.float64())
        text = pa.array(cells, pa.string())
    else:
        parsed = pd.to_numeric(pd.Series(cells), errors="coerce").to_numpy(dtype=np.float64)
        wrong = ~np.isfinite(parsed)
        kind = "a number"
        if prop.type == "count" and not wrong.any():
            wrong = parsed != np.round(parsed)
            kind = "an integer count"
        if wrong.any():
            i = int(np.argmax(wrong))
            raise _error(line(int(idx[i])), prop.name, f"expected {kind}, got {cells[i]!r}")
        num = pa.array(parsed, pa.float64())
        text = pa.nulls(len(cells), pa.string())
    return pa.table({
        "sensor_id": pa.array(sids, pa.int64()),
        "property_id": pa.array(np.full(len(cells), prop.id, np.int64)),
        "time_ms": pa.array(times, pa.int64()),
        "num": num,
        "text": text,
    })


def write_csv(result: Result) -> Iterator[bytes]:
    """The result table as CSV in the upload format, in chunks."""
    table = result.table
    # ISO 8601 with milliseconds and Z: what users and pandas expect, and what uploads read.
    table = table.set_column(0, "time", pa.array(
        np.datetime_as_string(table["time"].cast(pa.int64()).to_numpy().astype("datetime64[ms]"),
                              unit="ms") if table.num_rows else np.array([], dtype=str),
        pa.string()))
    if table.num_rows:
        table = table.set_column(0, "time", pa.compute.binary_join_element_wise(
            table["time"], pa.scalar("Z"), ""))
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(table.column_names)
    yield head.getvalue().encode()
    step = 65_536
    for start in range(0, table.num_rows, step):
        yield _csv_chunk(table.slice(start, step))


def _csv_chunk(table: pa.Table) -> bytes:
    # Unquoted is what people expect to read; Arrow refuses it when a value holds a comma,
    # quote or line break, and then this chunk is written with RFC 4180 quoting instead.
    for style in ("none", "needed"):
        buf = io.BytesIO()
        try:
            pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(
                include_header=False, quoting_style=style))
        except pa.ArrowInvalid:
            continue
        return buf.getvalue()
    raise AssertionError("unreachable: quoted CSV always writes")

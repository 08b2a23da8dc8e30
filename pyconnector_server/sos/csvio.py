"""Observations in CSV: the upload format, its all-or-nothing ingest, and the download.

The format (the same both ways, so a download uploads again unchanged)::

    time,sensor,feature,temperature,humidity,status
    2024-05-01T10:00:00Z,ts1,tf1,21.5,40,ok
    03-JUL-2015 13:10:00 IST,ts2,,19.0,,

* ``time`` (required): any accepted time format; ``sensor`` (required): a registered
  sensor; ``feature`` (optional): if given, the sensor's feature.
* Every other column is an observed property; an empty cell means no value. A property
  not yet known is registered as a quantity if its first value is a number, else text.
* Rows of the same sensor and time are one record: for each property the last value in
  the file wins, and the answer says how many rows were merged so.
* UTF-8, comma-separated (a header written with ``;``, a tab or ``|`` is refused naming
  it), one record per line, RFC 4180 quoting; a value may not hold
  a line break, nor any value a NUL character; a line holds at most 1 MiB. Blank lines
  are skipped; the line numbers in errors still count them.

The file is streamed to disk, then read in blocks of columns (pyarrow) and checked
vectorised, outside any transaction, into a spill file of Arrow batches beside it; only
then does one write transaction insert them. So the store's write lock (all of SQLite's)
is held for the inserts alone, and any bad line stores nothing: the error names the line
and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pyconnector.times import format_iso_many, parse_times

from ..auth import Tenant
from ..errors import APIError
from . import validate as v
from .query import Result
from .store import SosStore

# Arrow's CSV reader reads up to 32 blocks ahead, so this also caps its memory (~32 MiB).
# A row longer than a block may straddle two block boundaries, which Arrow refuses, so
# lines are limited to a block, checked before Arrow reads them.
BLOCK_BYTES = 1 << 20
LINE_MAX_BYTES = 1 << 20  # line break included
REQUIRED = ("time", "sensor")
# What the spill file keeps of each checked value; the property is one per batch.
SPILL = pa.schema([("sensor_id", pa.int64()), ("time_ms", pa.int64()),
                   ("num", pa.float64()), ("text", pa.string())])


def _error(line: int, column: str | None, message: str, status: int = 400) -> APIError:
    where = f"line {line}: {column}: " if column else f"line {line}: "
    return APIError(status, where + message, field=column, line=line)


def _cells(raw: bytes) -> list[str]:
    """The cells of one raw line (undecodable bytes kept as surrogates)."""
    text = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
    try:
        return next(csv.reader([text]), [])
    except csv.Error:
        return []


# The csv module (used here only to locate errors) refuses cells over 128 KiB by default;
# it must read any line Arrow reads, and a bit more to tell where a long one is long.
csv.field_size_limit(max(csv.field_size_limit(), 8 * LINE_MAX_BYTES))


def _column(header: list[str], cells: list[str], bad: Callable[[str], bool]) -> str | None:
    """The header name of the first cell for which ``bad`` holds."""
    for i, cell in enumerate(cells):
        if bad(cell):
            return header[i] if i < len(header) else None
    return None


def _header(path: Path) -> list[str]:
    with open(path, "rb") as fh:
        first = fh.readline(LINE_MAX_BYTES + 1)  # a bad byte further down is reported there
    if not first:
        raise APIError(400, "line 1: the file is empty; expected a header "
                            "'time,sensor[,feature],<property>…'", line=1)
    if len(first) > LINE_MAX_BYTES:
        raise APIError(400, f"line 1: longer than {LINE_MAX_BYTES:,} bytes, the limit of "
                            "a line", line=1)
    if b"\x00" in first:
        raise APIError(400, "line 1: must not contain NUL characters", line=1)
    if first.count(b'"') % 2:  # a quote still open at the end of the line
        raise APIError(400, f"line 1: {_LINE_BREAK}", line=1)
    try:
        header = next(csv.reader([first.decode("utf-8-sig")]))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise APIError(400, f"line 1: unreadable header: {exc}", line=1) from None
    header = [h.strip() for h in header]
    if len(header) == 1 and (other := _other_delimiter(header[0])) is not None:
        raise APIError(400, f"line 1: the columns are separated by {other!r}, not by commas; "
                            "the platform reads comma-separated CSV: save the file as CSV "
                            "with commas (header 'time,sensor[,feature],<property>…')", line=1)
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


OTHER_DELIMITERS = (";", "\t", "|")


def _other_delimiter(line: str) -> str | None:
    """The delimiter a one-column header is really written with (spreadsheets in many
    locales save CSV with ';'), if another one splits it into time and sensor columns."""
    for sep in OTHER_DELIMITERS:
        names = {c.strip().strip('"') for c in line.split(sep)}
        if all(col in names for col in REQUIRED):
            return sep
    return None


def _scan_bytes(path: Path, header: list[str]) -> bool:
    """400 for the first NUL byte or over-long line of the file; whether it holds quotes.

    One pass in 1 MiB reads at memchr speed (about 50 ms for 50 MB, no memory kept):
    PostgreSQL cannot store a NUL, and Arrow cannot read a line longer than its block."""
    buf = bytearray(1 << 20)
    quoted = False
    offset = 0  # of buf in the file
    last_break = -1  # offset of the last line break seen
    lines = 0  # line breaks before buf
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            breaks = np.flatnonzero(np.frombuffer(buf, np.uint8, n) == 10)
            ends = breaks + offset
            over = np.flatnonzero(np.diff(ends, prepend=last_break) > LINE_MAX_BYTES)
            long_at = (int(ends[over[0] - 1]) + 1 if over[0] else last_break + 1
                       ) if len(over) else -1
            nul = buf.find(b"\x00", 0, n)
            if nul >= 0 and (long_at < 0 or offset + nul < long_at):
                at = int(np.searchsorted(breaks, nul))  # breaks before the NUL in buf
                start = int(breaks[at - 1]) + 1 + offset if at else last_break + 1
                raise _error(lines + at + 1, _column(header, _cells(_read_line(fh, start)),
                                                     lambda c: "\x00" in c),
                             "must not contain NUL characters")
            if long_at >= 0:
                raise _long_line(fh, header, lines + int(over[0]) + 1, long_at,
                                 int(ends[over[0]]) - long_at + 1)
            quoted = quoted or buf.find(b'"', 0, n) >= 0
            if len(breaks):
                last_break = int(breaks[-1]) + offset
            lines += len(breaks)
            offset += n
        if offset - last_break - 1 > LINE_MAX_BYTES:  # the last line, without a break
            raise _long_line(fh, header, lines + 1, last_break + 1, offset - last_break - 1)
    return quoted


def _long_line(fh: Any, header: list[str], line: int, start: int, size: int) -> APIError:
    lengths = [len(c) for c in _cells(_read_line(fh, start))]
    longest = lengths.index(max(lengths)) if lengths else len(header)  # makes it long
    return _error(line, header[longest] if longest < len(header) else None,
                  f"the line is {size:,} bytes; lines are limited to {LINE_MAX_BYTES:,} "
                  "(line break included)")


def _read_line(fh: Any, start: int) -> bytes:
    """The line at offset ``start`` (its first 4 MiB: enough to tell its cells apart)."""
    fh.seek(start)
    return fh.readline(4 * LINE_MAX_BYTES)


@dataclass
class _Checked:
    """The outcome of reading and checking a file: what the write must insert."""

    sensors: dict[int, Any]  # id → SensorRef, as read before the check
    types: dict[str, str] = field(default_factory=dict)  # property → its type
    batches: list[str] = field(default_factory=list)  # the property of each spill batch
    links: set[tuple[int, str]] = field(default_factory=set)  # (sensor id, property)
    rows: int = 0  # data rows read
    empty: int = 0  # data rows without any value
    values: int = 0  # cells with a value
    # Repeats of a (sensor, time) already in the file: counted on the fly while each
    # sensor's times never go back, else from the spill file at the end (see _repeats).
    last: dict[int, int] = field(default_factory=dict)  # sensor id → its latest time
    in_order: bool = True
    repeated_rows: int = 0
    records: int = 0  # distinct (sensor, time) of the rows with values, plus the empty rows
    merged: int = 0  # rows merged into an earlier one of the same (sensor, time)


def _track_order(out: _Checked, sids: np.ndarray, times: np.ndarray) -> None:
    """Count rows repeating the (sensor, time) of the row before them for their sensor,
    while every sensor's times go forward (the usual file): then those are all the
    repeats, found without keeping any row. A time going back stops the count."""
    if not out.in_order or not len(sids):
        return
    frame = pd.DataFrame({"s": sids, "t": times})
    before = frame.groupby("s", sort=False)["t"].shift(1)
    first = before.isna().to_numpy()
    carried = frame["s"][first].map(out.last).to_numpy(dtype=np.float64)  # NaN: new sensor
    prev = before.to_numpy(dtype=np.float64, copy=True)
    prev[first] = carried
    step = times - prev  # NaN where the sensor had no earlier row
    if (step < 0).any():
        out.in_order = False
        return
    out.repeated_rows += int((step == 0).sum())
    out.last.update(frame.groupby("s", sort=False)["t"].max().to_dict())


def _repeats(out: _Checked, spill: Path) -> int:
    """Rows with values whose (sensor, time) an earlier row already had."""
    if out.in_order:
        return out.repeated_rows
    # Times went back somewhere: count distinct (sensor, time) over the checked values
    # (memory for their keys only, in this rarer case).
    keys = []
    with pa.OSFile(str(spill)) as source:
        for batch in pa.ipc.open_stream(source):
            keys.append(pd.DataFrame({"s": batch["sensor_id"].to_numpy(),
                                      "t": batch["time_ms"].to_numpy()}))
    distinct = len(pd.concat(keys).drop_duplicates()) if keys else 0
    return out.rows - out.empty - distinct


def ingest_csv(store: SosStore, t: Tenant, path: Path) -> dict[str, Any]:
    """Store every observation of the CSV file at ``path``, or none of them."""
    header = _header(path)
    quoted = _scan_bytes(path, header)
    spill = path.with_name(path.name + ".arrow")
    try:
        checked = _check(store, t, path, header, quoted, spill)
        checked.merged = _repeats(checked, spill)
        checked.records = checked.rows - checked.merged
        if checked.merged:
            checked.values = _distinct_values(spill, checked.batches)
        _insert(store, t, checked, spill)
    finally:
        spill.unlink(missing_ok=True)
    message = f"{checked.records} record(s), {checked.values} value(s) stored"
    if checked.merged:
        # Rows of one (sensor, time) are one record: each property keeps its last value.
        message += (f"; {checked.merged} row(s) repeated the sensor and time of an earlier "
                    f"row and were merged into it ({checked.rows} rows read; for each "
                    "property, the last value in the file wins)")
    return {"code": 201, "message": message, "records": checked.records,
            "values": checked.values, "rows": checked.rows, "merged": checked.merged}


def _distinct_values(spill: Path, batches: list[str]) -> int:
    """The values the file stores once repeats are merged: distinct (sensor, property,
    time) over the spill file (read only when the file repeats a (sensor, time))."""
    keys: dict[str, list[pd.DataFrame]] = {}
    with pa.OSFile(str(spill)) as source:
        for batch, pname in zip(pa.ipc.open_stream(source), batches, strict=True):
            keys.setdefault(pname, []).append(pd.DataFrame({
                "s": batch["sensor_id"].to_numpy(), "t": batch["time_ms"].to_numpy()}))
    return sum(len(pd.concat(frames).drop_duplicates()) for frames in keys.values())


def _check(store: SosStore, t: Tenant, path: Path, header: list[str], quoted: bool,
           spill: Path) -> _Checked:
    """Read, check and convert the whole file into ``spill``, outside any transaction."""
    props_in_file = [c for c in header if c not in v.RESERVED]
    bad: list[Any] = []

    def on_invalid(row: Any) -> str:
        if row.actual_columns == 1 and not row.text.strip():
            return "skip"  # a line of only spaces: blank, like the empty lines pyarrow skips
        bad.append(row)
        return "error"

    def read_error(exc: Exception, done: int) -> APIError:
        undecodable = None if bad else _first_undecodable_line(path, header)
        # A value with a line break shifts every line number after it: look for one
        # first (it starts no later than the bad line as counted without it).
        upto = (_physical_line(path, bad[0].number, skip_spaces=False) if bad
                else undecodable.line if undecodable else None)
        if quoted and (found := _first_multiline_record(path, header, upto)) is not None:
            return found
        if bad:
            row = bad[0]
            n = _physical_line(path, row.number, skip_spaces=False)
            short = row.actual_columns < len(header)
            missing = header[row.actual_columns] if short else None
            return _error(n, missing, f"expected {row.expected_columns} columns, got "
                                      f"{row.actual_columns}")
        if undecodable is not None:
            return undecodable
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
    with store.db.read() as conn:
        sensors = {r.name: r for r in store.sensor_refs_in(conn, t)}
        props = store.properties(conn, t)
    out = _Checked({r.id: r for r in sensors.values()})
    sensor_ids = {n: r.id for n, r in sensors.items()}
    done = 0  # data rows already handled
    blocks = iter(reader)
    with pa.ipc.new_stream(str(spill), SPILL) as writer:
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

            if quoted:  # only a quoted value can hold a line break
                _check_line_breaks(block, line)
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
            with_value = np.zeros(n, dtype=bool)
            for pname in props_in_file:
                cells = block[pname].to_numpy(zero_copy_only=False)
                present = cells != ""
                with_value |= present
                if not present.any():
                    continue
                ptype = out.types.get(pname) or (props[pname].type if pname in props else None)
                if ptype is None:  # a new property: its first value says which type
                    first = cells[present][0]
                    ptype = "text" if pd.isna(pd.to_numeric(first, errors="coerce")) else "quantity"
                out.types[pname] = ptype
                idx = np.flatnonzero(present)
                writer.write_batch(_values(pname, ptype, cells[idx], sids[idx], times[idx],
                                           idx, line))
                out.batches.append(pname)
                out.values += len(idx)
                out.links.update((int(s), pname) for s in np.unique(sids[idx]))
            _track_order(out, sids[with_value], times[with_value])
            done += n
            out.rows += n
            out.empty += n - int(with_value.sum())
    return out


def _insert(store: SosStore, t: Tenant, checked: _Checked, spill: Path) -> None:
    """Insert the checked values in one write transaction (all or nothing), after making
    sure the sensors and property types they were checked against still hold."""
    changed = ("changed while the file was being checked; nothing was stored, "
               "send the file again")
    used = {sid for sid, _ in checked.links}
    with store.db.write(bulk=True) as conn:
        now = {r.id: r for r in store.sensor_refs_in(conn, t)}
        for sid in used:
            if now.get(sid) != checked.sensors[sid]:
                raise APIError(409, f"sensor: sensor {checked.sensors[sid].name!r} {changed}",
                               field="sensor")
        props = store.properties(conn, t)
        ids: dict[str, int] = {}
        for pname, ptype in checked.types.items():
            prop = store.ensure_property(conn, t, props, pname, ptype)
            if prop.type != ptype:
                raise APIError(409, f"{pname}: the type of observed property {pname!r} "
                               f"{changed}", field=pname)
            ids[pname] = prop.id
        # Read, not mapped: mapped pages would count in the server's resident memory.
        with pa.OSFile(str(spill)) as source:
            for batch, pname in zip(pa.ipc.open_stream(source), checked.batches, strict=True):
                store.write_table(conn, pa.table({
                    "sensor_id": batch["sensor_id"],
                    "property_id": pa.array(np.full(batch.num_rows, ids[pname], np.int64)),
                    "time_ms": batch["time_ms"], "num": batch["num"], "text": batch["text"]}))
        store.link_outputs(conn, {(sid, ids[p]) for sid, p in checked.links})


def _check_line_breaks(block: pa.RecordBatch, line: Callable[[int], int]) -> None:
    """400 for the first value of the block holding a line break (the docs forbid them;
    Arrow, reading line by line, would take one and shift every later line number)."""
    first: tuple[int, str] | None = None
    for name in block.schema.names:
        hit = pc.match_substring_regex(block[name], r"[\r\n]")
        if pc.any(hit).as_py():
            i = int(np.argmax(hit.to_numpy(zero_copy_only=False)))
            if first is None or i < first[0]:
                first = (i, name)
    if first is not None:
        raise _error(line(first[0]), first[1], _LINE_BREAK)


_LINE_BREAK = "a value must not hold a line break (is a quote left open?)"


def _first_multiline_record(path: Path, header: list[str], upto: int | None
                            ) -> APIError | None:
    """The error for the first record spanning several lines, among lines 2 to ``upto``
    (None: to the end).

    Only on the error path: Python's csv module is slow but reads quotes as written."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        start = reader.line_num + 1
        try:
            for cells in reader:
                if reader.line_num > start:
                    hit = next((i for i, c in enumerate(cells) if "\n" in c or "\r" in c), 0)
                    return _error(start, header[hit] if hit < len(header) else None,
                                  _LINE_BREAK)
                if upto is not None and start > upto:
                    return None
                start = reader.line_num + 1
        except csv.Error:
            return None
    return None


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


def _first_undecodable_line(path: Path, header: list[str]) -> APIError | None:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                column = _column(header, _cells(raw), lambda c: any(
                    "\udc80" <= ch <= "\udcff" for ch in c))
                return _error(n, column, "not valid UTF-8")
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


def _values(pname: str, ptype: str, cells: np.ndarray, sids: np.ndarray, times: np.ndarray,
            idx: np.ndarray, line: Any) -> pa.RecordBatch:
    """The values to store of one property column, or a 400 for its first bad cell."""
    num: pa.Array
    text: pa.Array
    if ptype == "text":
        num = pa.nulls(len(cells), pa.float64())
        text = pa.array(cells, pa.string())
    else:
        parsed = pd.to_numeric(pd.Series(cells), errors="coerce").to_numpy(dtype=np.float64)
        wrong = ~np.isfinite(parsed)
        kind = "a number"
        if ptype == "count" and not wrong.any():
            wrong = parsed != np.round(parsed)
            kind = "an integer count"
        if wrong.any():
            i = int(np.argmax(wrong))
            raise _error(line(int(idx[i])), pname, f"expected {kind}, got {cells[i]!r}")
        num = pa.array(parsed, pa.float64())
        text = pa.nulls(len(cells), pa.string())
    return pa.record_batch([pa.array(sids, pa.int64()), pa.array(times, pa.int64()), num, text],
                           schema=SPILL)


def write_csv(result: Result) -> Iterator[bytes]:
    """The result table as CSV in the upload format, in chunks."""
    table = result.table
    # ISO 8601 in UTC with Z (milliseconds when there are some): what users and pandas
    # expect, what uploads read, and what the connector's tables and CSV show.
    table = table.set_column(0, "time", format_iso_many(
        table["time"].cast(pa.int64()).to_numpy()))
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

"""Observation queries, answered as one Arrow table: a row per record, a column per property.

Values are stored one per (sensor, property, time). A query reads each property's
series with one range scan, as Arrow (through ADBC on PostgreSQL, straight from the
database; in blocks of rows from ``sqlite3`` on SQLite), then lines the series up on (sensor, time). When every series has
the same keys - the usual case, a sensor reporting all its outputs each time - that is a
plain column stack; otherwise an outer join. The same table then becomes JSON, CSV or an
Arrow stream.

Paging: with no property filter, ``LIMIT offset+limit+1`` is pushed into every series
query. That is exact: a record among the first N overall is among the first N rows of
each series it appears in.
"""

from __future__ import annotations

import io
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from pyconnector.times import format_iso, format_tcup

from .. import cancel
from ..auth import Tenant
from ..errors import bad_request
from .params import Filter, ObservationQuery, encode_cursor
from .store import Prop, SosStore
from .tables import observation, sensor

_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
            "=": operator.eq, "!=": operator.ne}
ARROW_TYPES = {"quantity": pa.float64(), "count": pa.int64(), "text": pa.string()}
# A (sensor, property) reads at least this many values a slice: many sensors with few
# values each make fewer, larger slices rather than very many small ones.
MIN_SHARE = 1024


@dataclass
class Result:
    table: pa.Table  # time, sensor, feature, then one column per property
    properties: list[Prop]
    next_cursor: str | None


@dataclass
class Plan:
    """What a query reads, resolved against the store: its sensors, the properties it
    returns (``wanted``) and reads (``read``: those and the filtered ones), and the
    internal column of each read property."""

    refs: list[Any]
    wanted: list[Prop]
    read: list[Prop]
    column: dict[str, str]
    filtered: set[str]
    sensors_of: dict[str, list[int]]


def plan(store: SosStore, t: Tenant, q: ObservationQuery) -> Plan:
    """Resolve ``q``'s names; 404 for an unknown sensor or feature, 400 for a property
    or filter none of its sensors has."""
    refs = store.sensor_refs(t, q.sensors, q.feature)
    outputs = store.sensor_outputs(t, [r.id for r in refs]) if refs else []
    props = {p.name: p for _, p in outputs}
    for f in q.filters:
        if f.name not in props:
            raise bad_request(f"filter: no observed property {f.name!r} on these sensors",
                              "filter")
    wanted = sorted(props) if q.properties is None else q.properties
    for name in wanted:
        if name not in props:
            raise bad_request(f"property: no observed property {name!r} on these sensors",
                              "property")
    filtered = {f.name for f in q.filters}
    read = [props[n] for n in dict.fromkeys([*wanted, *sorted(filtered)])]
    # Internal columns are s, t and v<i>: no user-chosen name is ever a column name
    # before _present, so a property called "s" or "t" cannot shadow a key.
    return Plan(refs, [props[n] for n in wanted], read,
                {prop.name: f"v{i}" for i, prop in enumerate(read)}, filtered,
                {p: [s for s, pp in outputs if pp.name == p] for p in props})


def _keys(store: SosStore, p: Plan, q: ObservationQuery, desc: bool,
          push: int | None) -> pa.Table:
    """The records of ``q`` keyed by (s, t), a column per read property, in no order."""
    tables = store.db.read_arrow([
        (_series_sql(prop, p.sensors_of[prop.name], q, desc, push),
         _series_schema(prop, p.column[prop.name])) for prop in p.read])
    return _align(list(zip(p.read, tables)), {p.column[n] for n in p.filtered}, p.column)


def run(store: SosStore, t: Tenant, q: ObservationQuery) -> Result:
    p = plan(store, t, q)
    desc = q.order == "desc" if q.latest is None else True
    push = None
    if not q.filters:
        if q.latest is not None:
            push = q.latest
        elif q.limit is not None:
            push = q.offset + q.limit + 1
    keys = _keys(store, p, q, desc, push)
    if q.latest is not None:
        keys = keys.sort_by([("t", "descending"), ("s", "descending")]).slice(0, q.latest)
    order = "descending" if q.order == "desc" else "ascending"
    keys = keys.sort_by([("t", order), ("s", order)])
    keys = keys.slice(q.offset)
    next_cursor = None
    if q.limit is not None and keys.num_rows > q.limit:
        keys = keys.slice(0, q.limit)
        last = keys.num_rows - 1
        next_cursor = encode_cursor(keys["t"][last].as_py(), keys["s"][last].as_py())
    return Result(_present(keys, p.refs, p.wanted, p.column), p.wanted, next_cursor)


# -- answers in slices -------------------------------------------------------------------
@dataclass
class Sliced:
    """A query's answer as tables read one after the other (a slice of time each), so
    the whole answer is never in the server's memory. ``slices`` yields at least one
    table (maybe empty), each with ``schema``, in the answer's order."""

    properties: list[Prop]
    schema: pa.Schema
    slices: Iterator[pa.Table]


def sliced(store: SosStore, t: Tenant, q: ObservationQuery, rows: int) -> Sliced:
    """Answer ``q`` in slices of at most about ``rows`` values per property.

    Each slice is a span of time whose records are read, lined up and sorted as
    :func:`run` does for the whole answer; the spans follow one another in the answer's
    order, so the slices put end to end are :func:`run`'s table. On SQLite a span ends
    where a probe says one of its sensors would give more than its share of ``rows`` (the
    ``share+1``-th value of each (sensor, property) from the span's start, found in the
    primary key's index); on PostgreSQL, where a probe costs about what the read does, a
    span is sized from the slice before (see :func:`_read_slices`). Each slice is read in a transaction of its own: between two
    slices the server holds no connection, so a client that leaves mid-answer leaves
    nothing open. A query with ``latest``, ``limit``, ``offset`` or ``cursor`` is one
    slice (:func:`run`): its size is bounded by its own terms.

    Names are resolved here, so 400 and 404 come before the answer starts.
    """
    p = plan(store, t, q)
    schema = _answer_schema(p.wanted)
    if q.latest is not None or q.limit is not None or q.offset or q.cursor is not None:
        return Sliced(p.wanted, schema, iter([run(store, t, q).table.cast(schema)]))
    return Sliced(p.wanted, schema, _slices(store, p, q, rows, schema))


def _slices(store: SosStore, p: Plan, q: ObservationQuery, rows: int,
            schema: pa.Schema) -> Iterator[pa.Table]:
    try:
        yield from _read_slices(store, p, q, rows, schema)
    except Exception:
        gone = cancel.current.get()
        if gone is not None and gone.cancelled:
            return  # the client left (its read was cancelled): nobody wants the rest
        raise


def _read_slices(store: SosStore, p: Plan, q: ObservationQuery, rows: int,
                 schema: pa.Schema) -> Iterator[pa.Table]:
    desc = q.order == "desc"
    order = "descending" if desc else "ascending"
    lo, hi = q.start, q.end  # the span left to read: [lo, hi), None is unbounded
    # On PostgreSQL a probe costs about what the read does (walking the key index visits
    # the rows behind it until the table is vacuumed): a slice's span is then sized from
    # the slice before (its span and its biggest series), and a probe is made only at
    # the start and after an empty slice. SQLite's probes are cheap and exact.
    adaptive = store.db.dialect == "postgresql"
    width: int | None = None
    while True:
        # asc: this slice is [lo, cut); desc: [cut, hi). None: all that is left.
        if width is None:
            # Adaptive: a small first probe (a probe walks its share of every series);
            # the slices then grow to ``rows`` values, at most doubling each time.
            cut = _probe(store, p, min(rows, MIN_SHARE) if adaptive else rows, lo, hi, desc)
        elif desc:
            assert hi is not None  # a width comes from a span that had both ends
            cut = None if lo is not None and hi - width <= lo else hi - width
        else:
            assert lo is not None
            cut = None if hi is not None and lo + width >= hi else lo + width
        window = (replace(q, start=cut if cut is not None else lo, end=hi) if desc else
                  replace(q, start=lo, end=cut if cut is not None else hi))
        tables = store.db.read_arrow([
            (_series_sql(prop, p.sensors_of[prop.name], window, desc, None),
             _series_schema(prop, p.column[prop.name])) for prop in p.read])
        most = max((tb.num_rows for tb in tables), default=0)
        keys = _align(list(zip(p.read, tables)), {p.column[n] for n in p.filtered},
                      p.column)
        del tables
        keys = keys.sort_by([("t", order), ("s", order)])
        # The slice's first time: where its span began when it had no bound there.
        first = keys["t"][0].as_py() if keys.num_rows else None
        yield _present(keys, p.refs, p.wanted, p.column).cast(schema)
        if cut is None:
            return
        near = (hi if hi is not None else None if first is None else first + 1) if desc else (
            lo if lo is not None else first)
        span = None if near is None else (near - cut if desc else cut - near)
        if desc:
            hi = cut
        else:
            lo = cut
        width = None
        if adaptive and span is not None and most:
            # As many values as ``rows`` at the last slice's density; at most twice its span.
            width = max(1, min(2 * span, span * rows // most))


def _probe(store: SosStore, p: Plan, rows: int, lo: int | None, hi: int | None,
           desc: bool) -> int | None:
    """Where the next slice of ``[lo, hi)`` ends (asc) or starts (desc): the nearest time
    at which some (sensor, property) reaches its share of ``rows`` values (beyond it,
    for desc); None when every one has fewer values than its share left."""
    o = observation
    found: list[int] = []
    with store.db.read() as conn:
        for prop in p.read:
            ids = p.sensors_of[prop.name]
            if not ids:
                continue
            share = max(rows // len(ids), min(rows, MIN_SHARE))
            nth = sa.select(o.c.time_ms).where(o.c.sensor_id == sensor.c.id,
                                               o.c.property_id == prop.id)
            if lo is not None:
                nth = nth.where(o.c.time_ms >= lo)
            if hi is not None:
                nth = nth.where(o.c.time_ms < hi)
            # asc: the (share+1)-th time from lo, the first one past the slice; desc: the
            # share-th time down from hi, the slice's first (it starts there).
            nth = (nth.order_by(o.c.time_ms.desc()).limit(1).offset(share - 1) if desc else
                   nth.order_by(o.c.time_ms).limit(1).offset(share))
            agg = sa.func.max if desc else sa.func.min
            value = conn.execute(sa.select(agg(nth.scalar_subquery()))
                                 .where(sensor.c.id.in_(ids))).scalar()
            if value is not None:
                found.append(int(value))
    if not found:
        return None
    cut = max(found) if desc else min(found)
    if desc and lo is not None and cut <= lo:
        return None
    return cut


def _answer_schema(props: list[Prop]) -> pa.Schema:
    """The columns users see: time, sensor, feature, then one per property."""
    return pa.schema([("time", pa.timestamp("ms", tz="UTC")), ("sensor", pa.string()),
                      ("feature", pa.string()),
                      *[(prop.name, ARROW_TYPES[prop.type]) for prop in props]])


def _series_sql(prop: Prop, sensor_ids: list[int], q: ObservationQuery, desc: bool,
                push: int | None) -> sa.Select[Any]:
    o = observation
    col = o.c.text if prop.type == "text" else o.c.num
    stmt = (sa.select(o.c.sensor_id.label("s"), o.c.time_ms.label("t"), col.label("v"))
            .where(o.c.property_id == prop.id, o.c.sensor_id.in_(sensor_ids), col.is_not(None)))
    if q.start is not None:
        stmt = stmt.where(o.c.time_ms >= q.start)
    if q.end is not None:
        stmt = stmt.where(o.c.time_ms < q.end)
    if q.cursor is not None:
        # Keyset paging: strictly after the last (time, sensor) of the previous page. The
        # plain time bound lets the database use it as a range on the key.
        ct, cs = q.cursor
        key = sa.tuple_(o.c.time_ms, o.c.sensor_id)
        stmt = stmt.where(o.c.time_ms >= ct, key > sa.tuple_(ct, cs)) if q.order == "asc" \
            else stmt.where(o.c.time_ms <= ct, key < sa.tuple_(ct, cs))
    for f in q.filters:
        if f.name == prop.name:
            stmt = stmt.where(_condition(col, f, prop))
    if push is not None:
        direction = sa.desc if desc else sa.asc
        stmt = stmt.order_by(direction(o.c.time_ms), direction(o.c.sensor_id)).limit(push)
    return stmt


def _condition(col: Any, f: Filter, prop: Prop) -> Any:
    value: Any = f.value
    if prop.type != "text":
        try:
            value = float(f.value)
        except ValueError:
            raise bad_request(f"filter: {f.name} is a number; cannot compare it with "
                              f"{f.value!r}", "filter") from None
    return _COMPARE[f.op](col, value)


def _series_schema(prop: Prop, column: str) -> pa.Schema:
    return pa.schema([("s", pa.int64()), ("t", pa.int64()), (column, ARROW_TYPES[prop.type])])


def _align(series: list[tuple[Prop, pa.Table]], required: set[str],
           column: dict[str, str]) -> pa.Table:
    """One table keyed by (s, t) with a column per series; filtered series must match."""
    empty = pa.table({"s": pa.array([], pa.int64()), "t": pa.array([], pa.int64())})
    if not series:
        return empty
    first = series[0][1]
    same = all(tb.num_rows == first.num_rows and tb["s"].equals(first["s"])
               and tb["t"].equals(first["t"]) for _, tb in series[1:])
    if same:
        cols = {"s": first["s"], "t": first["t"]}
        for prop, tb in series:
            cols[column[prop.name]] = tb[column[prop.name]]
        return pa.table(cols)
    keys = pa.concat_tables([tb.select(["s", "t"]) for _, tb in series])
    keys = keys.group_by(["s", "t"]).aggregate([])
    for prop, tb in series:
        how = "inner" if column[prop.name] in required else "left outer"
        keys = keys.join(tb, ["s", "t"], join_type=how)
    return keys


def _present(keys: pa.Table, refs: list[Any], props: list[Prop],
             column: dict[str, str]) -> pa.Table:
    """Swap ids for names and epoch ms for timestamps: the table users see."""
    ids = np.array([r.id for r in refs], dtype=np.int64)
    order = np.argsort(ids)
    sids = keys["s"].to_numpy()
    pos = order[np.searchsorted(ids[order], sids)] if len(sids) else np.array([], np.int64)
    names = pa.array([r.name for r in refs], pa.string())
    features = pa.array([r.feature for r in refs], pa.string())
    cols: dict[str, Any] = {
        "time": keys["t"].cast(pa.timestamp("ms", tz="UTC")),
        "sensor": names.take(pa.array(pos, pa.int64())),
        "feature": features.take(pa.array(pos, pa.int64())),
    }
    for p in props:
        internal = column[p.name]
        cols[p.name] = keys[internal] if internal in keys.column_names else pa.nulls(
            keys.num_rows, ARROW_TYPES[p.type])
    return pa.table(cols)


def to_tcup_json(result: Result, time_format: str = "tcup") -> dict[str, Any]:
    """The TCUP observation shape, one item per run of records of the same sensor."""
    table = result.table
    fmt = {"tcup": format_tcup, "iso": format_iso, "epoch": int}[time_format]
    times = table["time"].cast(pa.int64()).to_pylist()
    sensors = table["sensor"].to_pylist()
    featurs = table["feature"].to_pylist()
    columns = [(p.name, table[p.name].to_pylist()) for p in result.properties]
    items: list[dict[str, Any]] = []
    for i, (ts, s) in enumerate(zip(times, sensors)):
        if not items or items[-1]["sensor"] != s:
            items.append({"sensor": s, "feature": featurs[i], "record": []})
        output = [{"name": n, "value": col[i]} for n, col in columns if col[i] is not None]
        items[-1]["record"].append({"starttime": fmt(ts), "output": output})
    return {"code": 200, "count": table.num_rows, "next": result.next_cursor,
            "observations": items}


def arrow_stream(answer: Sliced) -> Iterator[bytes]:
    """The answer as an Arrow IPC stream, sent a batch at a time as each slice is read."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, answer.schema) as writer:
        for table in answer.slices:
            for batch in table.to_batches(max_chunksize=65_536):
                writer.write_batch(batch)
                yield sink.getvalue()
                sink.seek(0)
                sink.truncate()
    yield sink.getvalue()  # the schema if nothing came before, and the end-of-stream mark


def csv_stream(answer: Sliced, write: Callable[[Result], Iterator[bytes]]
               ) -> Iterator[bytes]:
    """The answer as CSV: ``write`` (:func:`.csvio.write_csv`: a header line, then the
    records) of each slice, the header from the first slice only."""
    for i, table in enumerate(answer.slices):
        chunks = write(Result(table, answer.properties, None))
        if i:
            next(chunks)  # the header again
        yield from chunks

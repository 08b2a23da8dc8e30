"""Insert observations from the TCUP JSON body.

Each item of ``observations[]`` is checked and stored or rejected on its own: a bad item
stores nothing of itself and is reported with its index and field; the good ones are
written in one transaction. New observed properties are registered with the type their
first value implies, but only if an accepted item uses them.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from pyconnector.times import parse_time

from ..auth import Tenant
from ..errors import APIError, bad_request
from . import validate as v
from .store import Prop, SensorRef, SosStore

# What x-routing does with accepted observations: db stores them; mq hands them to message
# routing (the outbox, drained into the tenant's direct exchange) without storing them.
DONE = {"db": "stored", "mq": "routed (not stored)", "both": "stored and routed"}

Pending = tuple[int, str, int, float | None, str | None]  # sensor, property name, time, num, text


def _item(raw: Any, i: int, sensors: dict[str, SensorRef], props: dict[str, Prop],
          new_types: dict[str, str], checked: dict[Any, str]
          ) -> tuple[list[Pending], dict[str, str]]:
    """Check one observation item; its rows, and the properties it would register.

    ``checked`` remembers, for the request, each output name already validated and the
    type it resolved to: a batch repeats the same few names on every record.
    """
    f = f"observations[{i}]"
    item = v.obj(raw, f)
    name = v.name(item.get("sensor"), f"{f}.sensor")
    ref = sensors.get(name)
    if ref is None:
        raise APIError(404, f"{f}.sensor: sensor {name!r} not found", field=f"{f}.sensor")
    if item.get("feature") is not None:
        fname = v.name(item["feature"], f"{f}.feature")
        if fname != ref.feature:
            raise bad_request(f"{f}.feature: sensor {name!r} is bound to feature "
                              f"{ref.feature!r}, not {fname!r}", f"{f}.feature")
    out: list[Pending] = []
    mine: dict[str, str] = {}  # properties this item would register
    sid = ref.id
    for j, rec in enumerate(v.items(item.get("record"), f"{f}.record")):
        rf = f"{f}.record[{j}]"
        rec = v.obj(rec, rf)
        t = v.time_ms(rec.get("starttime"), f"{rf}.starttime")
        if rec.get("endtime") is not None:
            if v.time_ms(rec["endtime"], f"{rf}.endtime") < t:
                raise bad_request(f"{rf}.endtime: before starttime", f"{rf}.endtime")
        for k, o in enumerate(v.items(rec.get("output"), f"{rf}.output")):
            if type(o) is not dict:
                v.obj(o, f"{rf}.output[{k}]")
            pname = o.get("name")
            raw_value = o.get("value")
            ptype = checked.get(pname) if type(pname) is str else None
            if ptype is None:
                pname = v.property_name(pname, f"{rf}.output[{k}].name")
                known = props.get(pname)
                ptype = (known.type if known else new_types.get(pname) or mine.get(pname)
                         or v.infer_type(raw_value))
                if known is None:
                    mine.setdefault(pname, ptype)
                else:
                    checked[pname] = ptype  # a new property is re-checked per item
            kind = type(raw_value)
            if ptype == "quantity" and (kind is float or kind is int) and \
                    math.isfinite(raw_value):
                out.append((sid, pname, t, float(raw_value), None))  # the common case
                continue
            num, text = v.value(raw_value, ptype, f"{rf}.output[{k}].value")
            out.append((sid, pname, t, num, text))
    return out, mine


def _fast_item(raw: Any, sensors: dict[str, SensorRef], checked: dict[Any, str],
               times: dict[Any, int]) -> list[Pending] | None:
    """The rows of a well-formed item, or None to let :func:`_item` look closer.

    Most requests are made by programs and are well formed; checking them without
    building a field path per value halves the cost. Anything unusual - a new property,
    a value of another type, a missing field - returns None, and the careful check then
    accepts the item or names exactly what is wrong. So this path never accepts what
    :func:`_item` would refuse. ``times`` keeps, for the request, each start time already
    parsed: the items of a batch often share their times.
    """
    if type(raw) is not dict:
        return None
    name = raw.get("sensor")
    ref = sensors.get(name) if type(name) is str else None
    records = raw.get("record")
    if ref is None or type(records) is not list or not records:
        return None
    feature = raw.get("feature")
    if feature is not None and feature != ref.feature:
        return None
    sid = ref.id
    out: list[Pending] = []
    for rec in records:
        if type(rec) is not dict or rec.get("endtime") is not None:
            return None
        outputs = rec.get("output")
        if type(outputs) is not list or not outputs:
            return None
        start = rec.get("starttime")
        t = times.get(start) if type(start) is str or type(start) is int else None
        if t is None:
            try:
                t = times[start] = parse_time(start)
            except (ValueError, TypeError):
                return None
        for o in outputs:
            if type(o) is not dict:
                return None
            pname = o.get("name")
            ptype = checked.get(pname) if type(pname) is str else None
            value = o.get("value")
            kind = type(value)
            if ptype == "quantity" and (kind is float or kind is int) and math.isfinite(value):
                out.append((sid, pname, t, float(value), None))
            elif ptype == "text" and kind is str and "\x00" not in value:
                out.append((sid, pname, t, None, value))
            else:
                return None
    return out


def _write(store: SosStore, conn: Any, t: Tenant, raw_items: list[Any], names: list[str],
           routing: str) -> tuple[list[dict[str, Any]], list[Pending]]:
    """Check the items and write the accepted ones in ``conn``'s transaction; each item's
    outcome and the rows written. Runs again from the start if its group fails."""
    results: list[dict[str, Any]] = []
    sensors = {r.name: r for r in store.sensor_refs_in(conn, t, names)}
    props = store.properties(conn, t)
    new_types: dict[str, str] = {}
    checked: dict[Any, str] = {}
    times: dict[Any, int] = {}
    pending: list[Pending] = []
    accepted: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_items):
        fast = _fast_item(raw, sensors, checked, times)
        try:
            rows, mine = (fast, {}) if fast is not None else _item(
                raw, i, sensors, props, new_types, checked)
            if routing != "db":  # the outbox keeps the item as sent: bound its nesting
                v.json_value(raw, f"observations[{i}]", max_bytes=None)
        except APIError as exc:
            results.append({"index": i, **exc.body()})
            continue
        for pname, ptype in mine.items():
            new_types.setdefault(pname, ptype)
        pending.extend(rows)
        accepted.append(raw)
        first = rows[0][2] if rows else None
        n = 1 if rows and all(r[2] == first for r in rows) else len({r[2] for r in rows})
        results.append({"index": i, "code": 201, "message": f"{n} record(s) {DONE[routing]}"})
    for pname, ptype in new_types.items():
        store.ensure_property(conn, t, props, pname, ptype)
    if routing in ("db", "both"):
        store.write_values(conn, [(s, props[p].id, ts, n, x) for s, p, ts, n, x in pending])
        store.link_outputs(conn, {(s, props[p].id) for s, p, *_ in pending})
    if routing in ("mq", "both") and accepted:
        store.add_outbox(conn, t, routing, accepted)
    return results, pending


def insert_observations(store: SosStore, t: Tenant, body: Any, routing: str) -> dict[str, Any]:
    """Check and store (or route) the items of a TCUP insert body; the answer's body.

    The write shares a transaction with concurrent inserts (:class:`~.commit.GroupCommit`),
    and the answer is given once that transaction is committed."""
    body = v.obj(body, "body")
    raw_items = v.items(body.get("observations"), "observations")
    # Only valid names: a dict or list in `sensor` is unhashable, and PostgreSQL refuses a
    # NUL in a lookup; _item reports either as a 400.
    names = list({o["sensor"] for o in raw_items
                  if isinstance(o, dict) and v.is_name(o.get("sensor"))})
    results, pending = store.group.run(
        lambda conn: _write(store, conn, t, raw_items, names, routing))
    failed = [r for r in results if r["code"] >= 400]
    if not failed:
        records = sum(1 for _ in {(s, ts) for s, _p, ts, *_ in pending})
        return {"code": 201, "message": f"{records} record(s) of {len(raw_items)} "
                f"observation(s) {DONE[routing]}", "results": results}
    if len(failed) == len(results):
        first = failed[0]
        out = {k: first[k] for k in ("code", "message", "field") if k in first}
        return {**out, "results": results}
    return {"code": 207, "message": f"{len(results) - len(failed)} of {len(results)} "
            f"observation(s) {DONE[routing]}; see results", "results": results}


def insert_observations_json(store: SosStore, t: Tenant, body: Any, routing: str) -> bytes:
    """:func:`insert_observations`'s answer as JSON, rendered in the caller's (worker)
    thread: FastAPI's encoder took longer than the checks of the items (about 2 ms for an
    answer of 100 results), on the event loop."""
    return orjson.dumps(insert_observations(store, t, body, routing))

"""Insert observations from the TCUP JSON body.

Each item of ``observations[]`` is checked and stored or rejected on its own: a bad item
stores nothing of itself and is reported with its index and field; the good ones are
written in one transaction. New observed properties are registered with the type their
first value implies, but only if an accepted item uses them.
"""

from __future__ import annotations

from typing import Any

from ..auth import Tenant
from ..errors import APIError, bad_request
from . import validate as v
from .store import Prop, SensorRef, SosStore

Pending = tuple[int, str, int, float | None, str | None]  # sensor, property name, time, num, text


def _item(raw: Any, i: int, sensors: dict[str, SensorRef], props: dict[str, Prop],
          new_types: dict[str, str]) -> tuple[list[Pending], dict[str, str]]:
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
    for j, rec in enumerate(v.items(item.get("record"), f"{f}.record")):
        rf = f"{f}.record[{j}]"
        rec = v.obj(rec, rf)
        t = v.time_ms(rec.get("starttime"), f"{rf}.starttime")
        if rec.get("endtime") is not None:
            if v.time_ms(rec["endtime"], f"{rf}.endtime") < t:
                raise bad_request(f"{rf}.endtime: before starttime", f"{rf}.endtime")
        for k, o in enumerate(v.items(rec.get("output"), f"{rf}.output")):
            of = f"{rf}.output[{k}]"
            o = v.obj(o, of)
            pname = v.property_name(o.get("name"), f"{of}.name")
            raw_value = o.get("value")
            known = props.get(pname)
            ptype = (known.type if known else new_types.get(pname) or mine.get(pname)
                     or v.infer_type(raw_value))
            if known is None:
                mine.setdefault(pname, ptype)
            num, text = v.value(raw_value, ptype, f"{of}.value")
            out.append((ref.id, pname, t, num, text))
    return out, mine


def insert_observations(store: SosStore, t: Tenant, body: Any, routing: str) -> dict[str, Any]:
    body = v.obj(body, "body")
    raw_items = v.items(body.get("observations"), "observations")
    # Only strings: a dict or list in `sensor` is unhashable; _item reports it as a 400.
    names = list({o["sensor"] for o in raw_items
                  if isinstance(o, dict) and isinstance(o.get("sensor"), str)})
    results: list[dict[str, Any]] = []
    with store.db.write() as conn:
        sensors = {r.name: r for r in store.sensor_refs_in(conn, t, names)}
        props = store.properties(conn, t)
        new_types: dict[str, str] = {}
        pending: list[Pending] = []
        accepted: list[dict[str, Any]] = []
        for i, raw in enumerate(raw_items):
            try:
                rows, mine = _item(raw, i, sensors, props, new_types)
            except APIError as exc:
                results.append({"index": i, **exc.body()})
                continue
            for pname, ptype in mine.items():
                new_types.setdefault(pname, ptype)
            pending.extend(rows)
            accepted.append(raw)
            results.append({"index": i, "code": 201,
                            "message": f"{len({r[2] for r in rows})} record(s) stored"})
        for pname, ptype in new_types.items():
            store.ensure_property(conn, t, props, pname, ptype)
        if routing in ("db", "both"):
            store.write_values(conn, [(s, props[p].id, ts, n, x) for s, p, ts, n, x in pending])
            store.link_outputs(conn, {(s, props[p].id) for s, p, *_ in pending})
        if routing in ("mq", "both") and accepted:
            store.add_outbox(conn, t, routing, accepted)
    failed = [r for r in results if r["code"] >= 400]
    if not failed:
        records = sum(1 for _ in {(s, ts) for s, _p, ts, *_ in pending})
        return {"code": 201, "message": f"{records} record(s) of {len(raw_items)} "
                f"observation(s) stored", "results": results}
    if len(failed) == len(results):
        first = failed[0]
        out = {k: first[k] for k in ("code", "message", "field") if k in first}
        return {**out, "results": results}
    return {"code": 207, "message": f"{len(results) - len(failed)} of {len(results)} "
            "observation(s) stored; see results", "results": results}

"""SOS HTTP routes under ``/api/sos/v2.0`` (TCUP-compatible).

TCUP answers every POST and PUT with HTTP 200 and puts the real status in the body
(``{"code": 201, "message": …}``); :class:`TcupRoute` does that for the write routes,
while authentication (401) and size (413) failures keep their HTTP status.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..apidocs import add_api_docs
from ..auth import Tenant
from ..bodies import batch_body, documented, json_body
from ..checks import MAX_COUNT
from ..deps import Auth, call, state
from ..errors import APIError
from ..limits import read_json
from ..openapi import answers, errors
from . import answers as a
from . import ingest
from . import validate as v
from .bodies import (
    FeatureIn,
    FeatureUpdate,
    ObservationsIn,
    PropertyIn,
    PropertyUpdate,
    SensorIn,
    SensorUpdate,
)
from .params import ObservationQuery
from .store import SosStore

PREFIX = "/api/sos/v2.0"
ARROW_STREAM = "application/vnd.apache.arrow.stream"


class TcupRoute(APIRoute):
    """POST/PUT answer 200 with the outcome in the body, as TCUP's SOS does."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not self.methods & {"POST", "PUT"}:
            return handler

        async def tcup_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except APIError as exc:
                if exc.status in (401, 413) or exc.status >= 500:
                    raise
                return JSONResponse(exc.body(), status_code=200)

        return tcup_handler


router = APIRouter(prefix=PREFIX, tags=["Sensor Observation Service"], route_class=TcupRoute)
add_api_docs(router)  # GET /api/sos/v2.0/v2/api-docs, where TCUP serves it
# A write answers 200 with the outcome (its code, 4xx included) in the body.
WRITE = answers(a.Outcome, 200, "The outcome: its code is the real status (TCUP)")
NOT_FOUND = errors(404)


store = state("sos", SosStore)
Store = Depends(store)


def _batch(fn: Callable[..., dict[str, Any]], t: Tenant, body: Any, kind: str
           ) -> dict[str, Any]:
    """Create one item, or each item of a list (reported per item: an item that failed
    its checks is reported in its place, the others are created)."""
    if not isinstance(body, list):
        return fn(t, body)
    results = []
    for i, item in enumerate(body):
        try:
            if isinstance(item, APIError):
                raise item
            results.append({"index": i, **fn(t, item, f"{kind}[{i}]")})
        except APIError as exc:
            results.append({"index": i, **exc.body()})
    ok = sum(r["code"] < 400 for r in results)
    if not ok:  # all failed: the first failure's code, message and field, as for observations
        first = results[0]
        return {**{k: first[k] for k in ("code", "message", "field") if k in first},
                "results": results}
    code = 201 if ok == len(results) else 207
    return {"code": code, "message": f"{ok} of {len(results)} created", "results": results}


# -- features ---------------------------------------------------------------------------
@router.post("/features", summary="Create a feature (or a list of them)",
             responses=WRITE)
async def create_features(
        t: Tenant = Auth,
        body: Any = batch_body(FeatureIn, "feature", "features"),
        s: SosStore = Store) -> Any:
    return await call(_batch, s.create_feature, t, body, "features")


@router.get("/features", summary="List features", responses=answers(list[a.Feature], 200,
            "The features", 404))
async def list_features(parent: str | None = None,
                        limit: int | None = Query(None, ge=0, le=MAX_COUNT),
                        offset: int = Query(0, ge=0, le=MAX_COUNT),
                        t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.list_features, t, parent, limit, offset)


@router.get("/features/{name}", summary="Get a feature",
            responses=answers(a.Feature, 200, "The feature", 404))
async def get_feature(name: str, t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.get_feature, t, name)


@router.put("/features/{name}", summary="Update a feature", responses=WRITE)
async def update_feature(
        name: str,
        t: Tenant = Auth,
        body: FeatureUpdate = json_body(FeatureUpdate, "feature"),
        s: SosStore = Store) -> Any:
    return await call(s.update_feature, t, name, body)


@router.delete("/features/{name}", summary="Delete a feature (cascade=true: with its "
               "sensors, their observations and child features)",
               responses=answers(a.Outcome, 200, "Deleted", 404, 409))
async def delete_feature(name: str, cascade: bool = False, t: Tenant = Auth,
                         s: SosStore = Store) -> Any:
    return await call(s.delete_feature, t, name, cascade)


# -- sensors ----------------------------------------------------------------------------
@router.post("/sensors", summary="Create a sensor (or a list of them)",
             responses=WRITE)
async def create_sensors(
        t: Tenant = Auth,
        body: Any = batch_body(SensorIn, "sensor", "sensors"),
        s: SosStore = Store) -> Any:
    return await call(_batch, s.create_sensor, t, body, "sensors")


@router.get("/sensors", summary="List sensors, optionally of one feature",
            responses=answers(list[a.Sensor], 200, "The sensors", 404))
async def list_sensors(feature: str | None = None,
                       limit: int | None = Query(None, ge=0, le=MAX_COUNT),
                       offset: int = Query(0, ge=0, le=MAX_COUNT),
                       t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.list_sensors, t, feature, limit, offset)


@router.get("/sensors/{name}", summary="Get a sensor",
            responses=answers(a.Sensor, 200, "The sensor", 404))
async def get_sensor(name: str, t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.get_sensor, t, name)


@router.put("/sensors/{name}", summary="Update a sensor", responses=WRITE)
async def update_sensor(
        name: str,
        t: Tenant = Auth,
        body: SensorUpdate = json_body(SensorUpdate, "sensor"),
        s: SosStore = Store) -> Any:
    return await call(s.update_sensor, t, name, body)


@router.delete("/sensors/{name}", summary="Delete a sensor and its observations",
               responses=answers(a.Outcome, 200, "Deleted", 404))
async def delete_sensor(name: str, t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.delete_sensor, t, name)


# -- observed properties ------------------------------------------------------------------
@router.post("/observedProperties", summary="Create an observed property (or a list)",
             responses=WRITE)
async def create_properties(
        t: Tenant = Auth,
        body: Any = batch_body(PropertyIn, "observedProperty", "observedProperties"),
        s: SosStore = Store) -> Any:
    return await call(_batch, s.create_property, t, body, "observedProperties")


@router.get("/observedProperties", summary="List observed properties",
            responses=answers(list[a.ObservedProperty], 200, "The observed properties"))
async def list_properties(t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.list_properties, t)


@router.get("/observedProperties/{name}", summary="Get an observed property",
            responses=answers(a.ObservedProperty, 200, "The observed property", 404))
async def get_property(name: str, t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.get_property, t, name)


@router.put("/observedProperties/{name}", summary="Update an observed property",
            responses=WRITE)
async def update_property(
        name: str,
        t: Tenant = Auth,
        body: PropertyUpdate = json_body(PropertyUpdate, "observedProperty"),
        s: SosStore = Store) -> Any:
    return await call(s.update_property, t, name, body)


@router.delete("/observedProperties/{name}", summary="Delete an unused observed property",
               responses=answers(a.Outcome, 200, "Deleted", 404, 409))
async def delete_property(name: str, t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.delete_property, t, name)


# -- observations -------------------------------------------------------------------------
@router.post("/observations", summary="Insert observations (TCUP body; honours x-routing)",
             responses=WRITE, dependencies=[documented(ObservationsIn)])
async def insert_observations(
        request: Request,
        x_routing: str | None = Header(None, alias="x-routing", description=(
            "db (default): store; mq: route only; both: store and route"),
            json_schema_extra={"enum": list(v.ROUTINGS)}),
        t: Tenant = Auth, s: SosStore = Store) -> Any:
    # Read here, not by a typed body: the insert checks its items on a fast path.
    routing = v.choice(x_routing, "x-routing", v.ROUTINGS, "db")
    body = await read_json(request)
    return Response(await call(ingest.insert_observations_json, s, t, body, routing),
                    media_type="application/json")


@router.post("/observations/csv", summary="Upload observations as CSV (all or nothing)",
             responses=WRITE, dependencies=[documented(
                 {"type": "string", "description": "A header line (time, sensor, then "
                  "one column per property) and one line per record"}, "text/csv")])
async def upload_csv(request: Request, t: Tenant = Auth, s: SosStore = Store) -> Any:
    tmp_dir = request.app.state.settings.data_path / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".csv")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
        from . import csvio

        return await call(csvio.ingest_csv, s, t, path)
    finally:
        path.unlink(missing_ok=True)


def _wants(request: Request) -> str:
    fmt = request.query_params.get("format")
    if fmt:
        return v.choice(fmt, "format", ("json", "csv", "arrow"), "json")
    accept = request.headers.get("accept", "")
    if ARROW_STREAM in accept:
        return "arrow"
    if "text/csv" in accept:
        return "csv"
    return "json"


def _q(description: str) -> Any:
    return Query(None, description=description)


async def _counted(prefer: str | None, s: SosStore, t: Tenant, q: ObservationQuery
                   ) -> dict[str, str]:
    """The ``x-record-count`` header when ``Prefer: count=exact`` asks for it and the
    count is known without running the query (see counting.py)."""
    from . import counting

    if not counting.wants_count(prefer):
        return {}
    n = await call(counting.count_records, s, t, q)
    return {} if n is None else {counting.HEADER: str(n)}


@router.get("/observations", summary="Query observations as JSON, CSV or an Arrow stream",
            responses=answers(a.Observations, 200, "A page of observations", 404, media={
                "text/csv": {"schema": {"type": "string"}},
                ARROW_STREAM: {"schema": {"type": "string", "format": "binary"}}}))
async def get_observations(
    request: Request,
    sensor: list[str] | None = _q("Sensor name(s); repeat or separate with commas"),
    feature: str | None = _q("Feature name: all its sensors"),
    start: str | None = _q("From this time (any accepted format)"),
    end: str | None = _q("Until this time, exclusive"),
    latest: str | None = _q("Only the N most recent records"),
    property: list[str] | None = _q("Property columns to return"),
    filter: list[str] | None = _q("Record filters: temperature>20, status='ok'"),
    order: str | None = _q("asc (default) or desc"),
    limit: str | None = _q("Records per page (JSON default 1000)"),
    offset: str | None = _q("Records to skip"),
    cursor: str | None = _q("Continue after the page that returned it as `next`"),
    format: str | None = _q("json (default), csv or arrow; or use the Accept header"),
    timeFormat: str | None = _q("JSON times: tcup (default), iso or epoch"),  # noqa: N803
    prefer: str | None = Header(None, description=(
        "count=exact: a CSV answer says in its x-record-count header how many records "
        "it holds (not with filter or cursor), for a progress bar")),
    t: Tenant = Auth, s: SosStore = Store,
) -> Any:
    fmt = _wants(request)
    settings = request.app.state.settings
    page = settings.max_page_size
    from . import csvio, query  # the column engine (pandas, Arrow) loads on first use

    q = ObservationQuery.from_params(
        request.query_params, page // 10 if fmt == "json" else None,
        page if fmt == "json" else None)
    if fmt == "json":
        tf = v.choice(timeFormat, "timeFormat", ("tcup", "iso", "epoch"), "tcup")
        result = await call(query.run, s, t, q)
        return await call(query.to_tcup_json, result, tf)
    # CSV and Arrow are read and sent a slice at a time: the server never holds the whole
    # answer (the JSON answer is one page, bounded by max_page_size).
    answer = await call(query.sliced, s, t, q, settings.sos_slice_rows)
    if fmt == "csv":
        return StreamingResponse(query.csv_stream(answer, csvio.write_csv),
                                 media_type="text/csv", headers={
                                     "content-disposition":
                                     'attachment; filename="observations.csv"',
                                     **await _counted(prefer, s, t, q)})
    return StreamingResponse(query.arrow_stream(answer), media_type=ARROW_STREAM)


@router.delete("/observations", summary="Delete observations of sensors/a feature in a span",
               responses=answers(a.Deleted, 200, "Deleted", 404))
async def delete_observations(
    request: Request,
    sensor: list[str] | None = _q("Sensor name(s)"),
    feature: str | None = _q("Feature name: all its sensors"),
    start: str | None = _q("From this time"),
    end: str | None = _q("Until this time, exclusive"),
    t: Tenant = Auth, s: SosStore = Store,
) -> Any:
    q = ObservationQuery.from_params(request.query_params, None, None)
    if q.sensors is None and q.feature is None:
        raise APIError(400, "sensor or feature: say whose observations to delete",
                       field="sensor")
    refs = await call(s.sensor_refs, t, q.sensors, q.feature)
    n = await call(s.delete_observations, t, refs, q.start, q.end)
    return {"code": 200, "message": f"{n} value(s) deleted", "deleted": n}


# -- summaries ------------------------------------------------------------------------------
@router.get("/capabilities", summary="Counts and each sensor's outputs",
            responses=answers(a.Capabilities, 200, "Counts and outputs"))
async def capabilities(t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.capabilities, t)


@router.get("/count", summary="Number of sensors, features and observed properties",
            responses=answers(a.Count, 200, "The counts"))
async def count(t: Tenant = Auth, s: SosStore = Store) -> Any:
    return await call(s.count, t)

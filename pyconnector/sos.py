"""Sensor Observation Service connector: ``conn.SensorObservation()``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast, overload
from urllib.parse import quote

import pandas as pd
import pyarrow as pa

from . import payloads
from .formats import (
    JSON,
    JSONObject,
    JSONRecords,
    ResponseType,
    TextType,
    check_response_type,
    render,
)
from .http import COUNT_EXACT, HTTPCore
from .payloads import time_ms
from .times import TimeLike, format_iso

BASE = "/api/sos/v2.0"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
BIG_UPLOAD = 8 << 20  # progress bars turn on by themselves above this size
# A feature's and a sensor's times: TCUP text in JSON, UTC timestamps in DataFrames.
STAMPS = ("created", "updated")

Names = str | list[str]


def _path(kind: str, name: str) -> str:
    return f"{BASE}/{kind}/{quote(name, safe='')}"


def _time(value: TimeLike | None, field: str) -> str | None:
    if value is None:
        return None
    ms = time_ms(value, field)  # a bad time fails here, naming the accepted forms
    if isinstance(value, datetime):
        return format_iso(ms)
    return str(value)


def _auto_progress(progress: bool | None, size: int | None = None) -> bool:
    if progress is not None:
        return progress
    return sys.stderr.isatty() and (size is None or size > BIG_UPLOAD)


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class SensorObservation:
    """Features, sensors, observed properties and observations of the platform's SOS.

    Every read takes ``responseType``: ``'json'`` (default), ``'table'``, ``'dataframe'``
    or ``'csv'``. Writes return the platform's ``{code, message}`` answer and raise a
    :class:`pyconnector.APIError` when the code says it failed.
    """

    def __init__(self, http: HTTPCore) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"<SensorObservation {self.http.describe(BASE)}>"

    def _object(self, method: str, path: str, **kwargs: Any) -> JSONObject:
        # The endpoints called through here answer one JSON object (their contract).
        return cast(JSONObject, self.http.request(method, path, **kwargs))

    # The overloads tell a type checker what each responseType gives: 'json' the endpoint's
    # JSON, 'dataframe' a DataFrame, 'table' and 'csv' text.

    # -- summaries ---------------------------------------------------------------------
    @overload
    def getCount(self, responseType: Literal["json"] = "json") -> JSONObject: ...
    @overload
    def getCount(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getCount(self, responseType: TextType) -> str: ...

    def getCount(self, responseType: ResponseType = "json") -> JSON | pd.DataFrame:  # noqa: N802,N803
        """Number of sensors, features and observed properties."""
        return render(self.http.request("GET", f"{BASE}/count"), responseType)

    @overload
    def getCapabilities(self, responseType: Literal["json"] = "json") -> JSONObject: ...
    @overload
    def getCapabilities(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getCapabilities(self, responseType: TextType) -> str: ...

    def getCapabilities(self, responseType: ResponseType = "json"  # noqa: N802,N803
                        ) -> JSON | pd.DataFrame:
        """TCUP capabilities: ``count`` and ``sensorOutput`` (each sensor's outputs); the
        tabular types have one row per sensor."""
        data = self.http.request("GET", f"{BASE}/capabilities")
        return render(data, responseType, rows=lambda d: [
            {"sensor": s, "outputs": ", ".join(o)} for s, o in d["sensorOutput"].items()])

    # -- features ----------------------------------------------------------------------
    def createFeature(self, name: str, description: str = "", parent: str | None = None,  # noqa: N802
                      metadata: dict[str, Any] | None = None,
                      location: dict[str, float] | None = None) -> JSONObject:
        """Register a feature of interest (a room, an engine…), optionally under a parent.

        ``location`` is ``{"lat": …, "lon": …}``; ``metadata`` any JSON object."""
        body = _drop_none({"name": name, "description": description, "parent": parent,
                           "metadata": metadata, "location": location})
        return self._object("POST", f"{BASE}/features", json=body)

    def createFeatures(self, features: list[dict[str, Any]]) -> JSONObject:  # noqa: N802
        """Register several features (each a dict of :meth:`createFeature`'s arguments);
        the answer reports each one (code 207 when some failed)."""
        return self._object("POST", f"{BASE}/features", json=features)

    @overload
    def getFeature(self, name: str, responseType: Literal["json"] = "json") -> JSONObject: ...
    @overload
    def getFeature(self, name: str, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getFeature(self, name: str, responseType: TextType) -> str: ...

    def getFeature(self, name: str, responseType: ResponseType = "json"  # noqa: N802,N803
                   ) -> JSON | pd.DataFrame:
        """One feature by name: description, parent, metadata, location."""
        return render(self.http.request("GET", _path("features", name)), responseType,
                      times=STAMPS)

    @overload
    def getFeatures(self, parent: str | None = None, responseType: Literal["json"] = "json",
                    limit: int | None = None, offset: int | None = None) -> JSONRecords: ...
    @overload
    def getFeatures(self, parent: str | None = None,
                    responseType: Literal["dataframe"] = ..., limit: int | None = None,
                    offset: int | None = None) -> pd.DataFrame: ...
    @overload
    def getFeatures(self, parent: str | None = None, responseType: TextType = ...,
                    limit: int | None = None, offset: int | None = None) -> str: ...

    def getFeatures(self, parent: str | None = None, responseType: ResponseType = "json",  # noqa: N802,N803
                    limit: int | None = None, offset: int | None = None
                    ) -> JSON | pd.DataFrame:
        """Features, all or the children of ``parent``; ``limit``/``offset`` page them."""
        params = _drop_none({"parent": parent, "limit": limit, "offset": offset})
        return render(self.http.request("GET", f"{BASE}/features", params=params),
                      responseType, times=STAMPS)

    def updateFeature(self, name: str, **fields: Any) -> JSONObject:  # noqa: N802
        """Change ``description``, ``parent``, ``metadata`` or ``location``."""
        return self._object("PUT", _path("features", name), json=fields)

    def deleteFeature(self, name: str, cascade: bool = False) -> JSONObject:  # noqa: N802
        """Delete a feature; ``cascade=True`` also deletes its sensors and sub-features."""
        return self._object("DELETE", _path("features", name),
                            params={"cascade": str(cascade).lower()})

    # -- sensors -----------------------------------------------------------------------
    def createSensor(self, name: str, feature: str,  # noqa: N802
                     outputs: list[str | dict[str, Any]] | None = None, type: str = "atomic",
                     members: list[str] | None = None, description: str = "",
                     metadata: dict[str, Any] | None = None) -> JSONObject:
        """Register a sensor bound to ``feature``. ``outputs`` declares what it observes:
        names, or ``{"name", "type": quantity|count|text, "unit"}``. A ``composite``
        sensor lists its ``members``."""
        body = _drop_none({"name": name, "feature": feature, "outputs": outputs, "type": type,
                           "members": members, "description": description,
                           "metadata": metadata})
        return self._object("POST", f"{BASE}/sensors", json=body)

    def createSensors(self, sensors: list[dict[str, Any]]) -> JSONObject:  # noqa: N802
        """Register several sensors (each a dict of :meth:`createSensor`'s arguments);
        the answer reports each one (code 207 when some failed)."""
        return self._object("POST", f"{BASE}/sensors", json=sensors)

    @overload
    def getSensor(self, name: str, responseType: Literal["json"] = "json") -> JSONObject: ...
    @overload
    def getSensor(self, name: str, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getSensor(self, name: str, responseType: TextType) -> str: ...

    def getSensor(self, name: str, responseType: ResponseType = "json"  # noqa: N802,N803
                  ) -> JSON | pd.DataFrame:
        """One sensor by name: its feature, type, outputs, members, metadata."""
        return render(self.http.request("GET", _path("sensors", name)), responseType,
                      times=STAMPS)

    @overload
    def getSensors(self, feature: str | None = None, responseType: Literal["json"] = "json",
                   limit: int | None = None, offset: int | None = None) -> JSONRecords: ...
    @overload
    def getSensors(self, feature: str | None = None,
                   responseType: Literal["dataframe"] = ..., limit: int | None = None,
                   offset: int | None = None) -> pd.DataFrame: ...
    @overload
    def getSensors(self, feature: str | None = None, responseType: TextType = ...,
                   limit: int | None = None, offset: int | None = None) -> str: ...

    def getSensors(self, feature: str | None = None, responseType: ResponseType = "json",  # noqa: N802,N803
                   limit: int | None = None, offset: int | None = None
                   ) -> JSON | pd.DataFrame:
        """Sensors, all or those of ``feature``; ``limit``/``offset`` page them."""
        params = _drop_none({"feature": feature, "limit": limit, "offset": offset})
        return render(self.http.request("GET", f"{BASE}/sensors", params=params),
                      responseType, times=STAMPS)

    def updateSensor(self, name: str, **fields: Any) -> JSONObject:  # noqa: N802
        """Change ``feature``, ``description``, ``metadata``, ``type``, ``members``, or add
        ``outputs``."""
        return self._object("PUT", _path("sensors", name), json=fields)

    def deleteSensor(self, name: str) -> JSONObject:  # noqa: N802
        """Delete a sensor and all its observations."""
        return self._object("DELETE", _path("sensors", name))

    # -- observed properties -----------------------------------------------------------
    def createObservedProperty(self, name: str, type: str = "quantity", unit: str = "",  # noqa: N802
                               description: str = "") -> JSONObject:
        """Register an observed property; ``type`` is ``quantity``, ``count`` or ``text``."""
        body = {"name": name, "type": type, "unit": unit, "description": description}
        return self._object("POST", f"{BASE}/observedProperties", json=body)

    @overload
    def getObservedProperty(self, name: str,
                            responseType: Literal["json"] = "json") -> JSONObject: ...
    @overload
    def getObservedProperty(self, name: str,
                            responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getObservedProperty(self, name: str, responseType: TextType) -> str: ...

    def getObservedProperty(self, name: str, responseType: ResponseType = "json"  # noqa: N802,N803
                            ) -> JSON | pd.DataFrame:
        """One observed property by name: type, unit, description."""
        return render(self.http.request("GET", _path("observedProperties", name)),
                      responseType)

    @overload
    def getObservedProperties(self, responseType: Literal["json"] = "json") -> JSONRecords: ...
    @overload
    def getObservedProperties(self, responseType: Literal["dataframe"]) -> pd.DataFrame: ...
    @overload
    def getObservedProperties(self, responseType: TextType) -> str: ...

    def getObservedProperties(self, responseType: ResponseType = "json"  # noqa: N802,N803
                              ) -> JSON | pd.DataFrame:
        """Every observed property of the tenant."""
        return render(self.http.request("GET", f"{BASE}/observedProperties"), responseType)

    def updateObservedProperty(self, name: str, **fields: Any) -> JSONObject:  # noqa: N802
        """Change an observed property's ``unit`` or ``description`` (or ``type``)."""
        return self._object("PUT", _path("observedProperties", name), json=fields)

    def deleteObservedProperty(self, name: str) -> JSONObject:  # noqa: N802
        """Delete an observed property no sensor uses."""
        return self._object("DELETE", _path("observedProperties", name))

    # -- observations --------------------------------------------------------------------
    @staticmethod
    def data(sensor: str, outputs: dict[str, Any], feature: str | None = None,
             time: TimeLike | None = None) -> JSONObject:
        """A TCUP observation body for one record (time defaults to now); a time in none
        of the accepted forms raises :class:`pyconnector.InputError` listing them."""
        return payloads.observation(sensor, outputs, feature, time)

    def insertObservation(self, observations: dict[str, Any] | list[dict[str, Any]],  # noqa: N802
                          routing: str = "db") -> JSONObject:
        """Insert observations: a TCUP body ``{"observations": […]}`` or its list.

        ``routing`` is TCUP's ``x-routing``: ``db`` stores, ``mq`` hands to message
        routing, ``both`` does both. A batch answers per item; code 207 means some failed.
        """
        body = {"observations": observations} if isinstance(observations, list) else observations
        return self._object("POST", f"{BASE}/observations", json=body,
                            headers={"x-routing": routing})

    def uploadObservationCSV(self, filename: str | os.PathLike[str],  # noqa: N802
                             progress: bool | None = None) -> JSONObject:
        """Upload observations from a CSV file (streamed; all rows stored or none).

        Columns: ``time,sensor[,feature],<property>…`` (see docs/sos.md). A progress bar
        shows for files over 8 MiB on a terminal, or when ``progress=True``.
        """
        size = Path(filename).stat().st_size
        return cast(JSONObject, self.http.upload(
            "POST", f"{BASE}/observations/csv", filename,
            progress=_auto_progress(progress, size), headers={"content-type": "text/csv"}))

    def _query(self, feature: str | None, sensor: Names | None, start: TimeLike | None,
               end: TimeLike | None, latest: int | None, properties: Names | None,
               filter: Names | None, order: str | None, limit: int | None,
               offset: int | None, cursor: str | None = None) -> dict[str, Any]:
        def many(x: Names | None) -> Names | None:
            # Lists go as repeated parameters: names may hold commas.
            return list(x) if isinstance(x, (list, tuple, set)) else x

        return _drop_none({
            "feature": feature, "sensor": many(sensor), "start": _time(start, "start"),
            "end": _time(end, "end"), "latest": latest, "property": many(properties),
            "filter": many(filter), "order": order, "limit": limit, "offset": offset,
            "cursor": cursor})

    @overload
    def getObservation(self, feature: str | None = None, sensor: Names | None = None,
                       start: TimeLike | None = None, end: TimeLike | None = None,
                       latest: int | None = None, properties: Names | None = None,
                       filter: Names | None = None, order: str = "asc",
                       limit: int | None = None, offset: int | None = None,
                       responseType: Literal["json"] = "json",
                       cursor: str | None = None) -> JSONObject: ...
    @overload
    def getObservation(self, feature: str | None = None, sensor: Names | None = None,
                       start: TimeLike | None = None, end: TimeLike | None = None,
                       latest: int | None = None, properties: Names | None = None,
                       filter: Names | None = None, order: str = "asc",
                       limit: int | None = None, offset: int | None = None,
                       responseType: Literal["dataframe"] = ...,
                       cursor: str | None = None) -> pd.DataFrame: ...
    @overload
    def getObservation(self, feature: str | None = None, sensor: Names | None = None,
                       start: TimeLike | None = None, end: TimeLike | None = None,
                       latest: int | None = None, properties: Names | None = None,
                       filter: Names | None = None, order: str = "asc",
                       limit: int | None = None, offset: int | None = None,
                       responseType: TextType = ..., cursor: str | None = None) -> str: ...

    def getObservation(self, feature: str | None = None,  # noqa: N802
                       sensor: Names | None = None, start: TimeLike | None = None,
                       end: TimeLike | None = None, latest: int | None = None,
                       properties: Names | None = None,
                       filter: Names | None = None, order: str = "asc",
                       limit: int | None = None, offset: int | None = None,
                       responseType: ResponseType = "json",  # noqa: N803
                       cursor: str | None = None) -> JSON | pd.DataFrame:
        """Observations of a sensor and/or feature.

        ``start``/``end`` bound the time (end exclusive), ``latest`` keeps the N most recent
        records, ``properties`` picks columns, ``filter`` keeps records whose values pass
        (``"temperature>20"``, ``"status='ok'"``). ``json`` answers one page in TCUP's
        shape (``limit`` records, default 1000; follow ``next`` with ``cursor``); the
        tabular types fetch every matching record as Arrow: ``dataframe`` has a UTC
        ``time`` column, ``sensor``, ``feature`` and one typed column per property.
        """
        rt = check_response_type(responseType)
        params = self._query(feature, sensor, start, end, latest, properties, filter, order,
                             limit, offset, cursor)
        if rt == "json":
            return self.http.request("GET", f"{BASE}/observations", params=params)
        content = self.http.get_bytes(f"{BASE}/observations", params=params,
                                      headers={"accept": ARROW_STREAM})
        return render(arrow_to_frame(content), rt)

    def iterObservation(self, feature: str | None = None,  # noqa: N802
                        sensor: Names | None = None, start: TimeLike | None = None,
                        end: TimeLike | None = None, properties: Names | None = None,
                        filter: Names | None = None, order: str = "asc",
                        pageSize: int = 1000) -> Iterator[JSONObject]:  # noqa: N803
        """Every matching observation item, page by page (JSON, following cursors)."""
        cursor = None
        while True:
            page = self.getObservation(feature, sensor, start, end, None, properties, filter,
                                       order, pageSize, None, "json", cursor)
            yield from page["observations"]
            cursor = page.get("next")
            if not cursor:
                return

    def downloadObservation(self, filename: str | os.PathLike[str],  # noqa: N802
                            feature: str | None = None, sensor: Names | None = None,
                            start: TimeLike | None = None, end: TimeLike | None = None,
                            latest: int | None = None, properties: Names | None = None,
                            filter: Names | None = None, order: str = "asc",
                            progress: bool | None = None) -> Path:
        """Stream the matching observations to a CSV file (the upload format); return its
        path. A progress bar shows on a terminal, or when ``progress=True``: in rows, with
        their total when the platform can count them beforehand (not with ``filter``)."""
        params = self._query(feature, sensor, start, end, latest, properties, filter, order,
                             None, None)
        params["format"] = "csv"
        bar = _auto_progress(progress)
        # The count costs the platform one more read of the keys: asked only for a bar.
        return self.http.download(f"{BASE}/observations", filename, params=params,
                                  progress=bar, headers=COUNT_EXACT if bar else {})

    def deleteObservation(self, feature: str | None = None,  # noqa: N802
                          sensor: Names | None = None, start: TimeLike | None = None,
                          end: TimeLike | None = None) -> JSONObject:
        """Delete the observations of sensors (or a feature's sensors) in a time span."""
        params = self._query(feature, sensor, start, end, None, None, None, None, None, None)
        return self._object("DELETE", f"{BASE}/observations", params=params)


def arrow_to_frame(content: bytes) -> pd.DataFrame:
    """An Arrow IPC stream as a DataFrame; integer counts stay integers (nullable)."""
    table = pa.ipc.open_stream(content).read_all()
    frame: pd.DataFrame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return frame

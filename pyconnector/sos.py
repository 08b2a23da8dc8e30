"""Sensor Observation Service connector: ``conn.SensorObservation()``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa

from . import payloads
from .formats import check_response_type, render
from .http import HTTPCore
from .times import format_iso, parse_time

BASE = "/api/sos/v2.0"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
BIG_UPLOAD = 8 << 20  # progress bars turn on by themselves above this size


def _path(kind: str, name: str) -> str:
    return f"{BASE}/{kind}/{quote(name, safe='')}"


def _time(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_iso(parse_time(value))
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

    # -- summaries ---------------------------------------------------------------------
    def getCount(self, responseType: str = "json") -> Any:  # noqa: N802,N803
        """Number of sensors, features and observed properties."""
        return render(self.http.request("GET", f"{BASE}/count"), responseType)

    def getCapabilities(self, responseType: str = "json") -> Any:  # noqa: N802,N803
        """TCUP capabilities: ``count`` and ``sensorOutput`` (each sensor's outputs)."""
        data = self.http.request("GET", f"{BASE}/capabilities")
        return render(data, responseType, rows=lambda d: [
            {"sensor": s, "outputs": ", ".join(o)} for s, o in d["sensorOutput"].items()])

    # -- features ----------------------------------------------------------------------
    def createFeature(self, name: str, description: str = "", parent: str | None = None,  # noqa: N802
                      metadata: dict[str, Any] | None = None,
                      location: dict[str, float] | None = None) -> dict[str, Any]:
        """Register a feature of interest (a room, an engine…), optionally under a parent."""
        body = _drop_none({"name": name, "description": description, "parent": parent,
                           "metadata": metadata, "location": location})
        return self.http.request("POST", f"{BASE}/features", json=body)

    def createFeatures(self, features: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N802
        """Register several features; the answer reports each one."""
        return self.http.request("POST", f"{BASE}/features", json=features)

    def getFeature(self, name: str, responseType: str = "json") -> Any:  # noqa: N802,N803
        return render(self.http.request("GET", _path("features", name)), responseType)

    def getFeatures(self, parent: str | None = None, responseType: str = "json",  # noqa: N802,N803
                    limit: int | None = None, offset: int | None = None) -> Any:
        params = _drop_none({"parent": parent, "limit": limit, "offset": offset})
        return render(self.http.request("GET", f"{BASE}/features", params=params),
                      responseType)

    def updateFeature(self, name: str, **fields: Any) -> dict[str, Any]:  # noqa: N802
        """Change ``description``, ``parent``, ``metadata`` or ``location``."""
        return self.http.request("PUT", _path("features", name), json=fields)

    def deleteFeature(self, name: str, cascade: bool = False) -> dict[str, Any]:  # noqa: N802
        """Delete a feature; ``cascade=True`` also deletes its sensors and sub-features."""
        return self.http.request("DELETE", _path("features", name),
                                 params={"cascade": str(cascade).lower()})

    # -- sensors -----------------------------------------------------------------------
    def createSensor(self, name: str, feature: str,  # noqa: N802
                     outputs: list[str | dict[str, Any]] | None = None, type: str = "atomic",
                     members: list[str] | None = None, description: str = "",
                     metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Register a sensor bound to ``feature``. ``outputs`` declares what it observes:
        names, or ``{"name", "type": quantity|count|text, "unit"}``. A ``composite``
        sensor lists its ``members``."""
        body = _drop_none({"name": name, "feature": feature, "outputs": outputs, "type": type,
                           "members": members, "description": description,
                           "metadata": metadata})
        return self.http.request("POST", f"{BASE}/sensors", json=body)

    def createSensors(self, sensors: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N802
        return self.http.request("POST", f"{BASE}/sensors", json=sensors)

    def getSensor(self, name: str, responseType: str = "json") -> Any:  # noqa: N802,N803
        return render(self.http.request("GET", _path("sensors", name)), responseType)

    def getSensors(self, feature: str | None = None, responseType: str = "json",  # noqa: N802,N803
                   limit: int | None = None, offset: int | None = None) -> Any:
        params = _drop_none({"feature": feature, "limit": limit, "offset": offset})
        return render(self.http.request("GET", f"{BASE}/sensors", params=params),
                      responseType)

    def updateSensor(self, name: str, **fields: Any) -> dict[str, Any]:  # noqa: N802
        """Change ``feature``, ``description``, ``metadata``, ``type``, ``members``, or add
        ``outputs``."""
        return self.http.request("PUT", _path("sensors", name), json=fields)

    def deleteSensor(self, name: str) -> dict[str, Any]:  # noqa: N802
        """Delete a sensor and all its observations."""
        return self.http.request("DELETE", _path("sensors", name))

    # -- observed properties -----------------------------------------------------------
    def createObservedProperty(self, name: str, type: str = "quantity", unit: str = "",  # noqa: N802
                               description: str = "") -> dict[str, Any]:
        body = {"name": name, "type": type, "unit": unit, "description": description}
        return self.http.request("POST", f"{BASE}/observedProperties", json=body)

    def getObservedProperty(self, name: str, responseType: str = "json") -> Any:  # noqa: N802,N803
        return render(self.http.request("GET", _path("observedProperties", name)),
                      responseType)

    def getObservedProperties(self, responseType: str = "json") -> Any:  # noqa: N802,N803
        return render(self.http.request("GET", f"{BASE}/observedProperties"), responseType)

    def updateObservedProperty(self, name: str, **fields: Any) -> dict[str, Any]:  # noqa: N802
        return self.http.request("PUT", _path("observedProperties", name), json=fields)

    def deleteObservedProperty(self, name: str) -> dict[str, Any]:  # noqa: N802
        return self.http.request("DELETE", _path("observedProperties", name))

    # -- observations --------------------------------------------------------------------
    @staticmethod
    def data(sensor: str, outputs: dict[str, Any], feature: str | None = None,
             time: Any = None) -> dict[str, Any]:
        """A TCUP observation body for one record (time defaults to now)."""
        return payloads.observation(sensor, outputs, feature, time)

    def insertObservation(self, observations: dict[str, Any] | list[dict[str, Any]],  # noqa: N802
                          routing: str = "db") -> dict[str, Any]:
        """Insert observations: a TCUP body ``{"observations": […]}`` or its list.

        ``routing`` is TCUP's ``x-routing``: ``db`` stores, ``mq`` hands to message
        routing, ``both`` does both. A batch answers per item; code 207 means some failed.
        """
        body = {"observations": observations} if isinstance(observations, list) else observations
        return self.http.request("POST", f"{BASE}/observations", json=body,
                                 headers={"x-routing": routing})

    def uploadObservationCSV(self, filename: str | os.PathLike[str],  # noqa: N802
                             progress: bool | None = None) -> dict[str, Any]:
        """Upload observations from a CSV file (streamed; all rows stored or none).

        Columns: ``time,sensor[,feature],<property>…`` (see docs/sos.md). A progress bar
        shows for files over 8 MiB on a terminal, or when ``progress=True``.
        """
        size = Path(filename).stat().st_size
        return self.http.upload("POST", f"{BASE}/observations/csv", filename,
                                progress=_auto_progress(progress, size),
                                headers={"content-type": "text/csv"})

    def _query(self, feature: Any, sensor: Any, start: Any, end: Any, latest: Any,
               properties: Any, filter: Any, order: Any, limit: Any, offset: Any,
               cursor: Any = None) -> dict[str, Any]:
        def many(x: Any) -> Any:
            # Lists go as repeated parameters: names may hold commas.
            return list(x) if isinstance(x, (list, tuple, set)) else x

        return _drop_none({
            "feature": feature, "sensor": many(sensor), "start": _time(start),
            "end": _time(end), "latest": latest, "property": many(properties),
            "filter": many(filter), "order": order, "limit": limit, "offset": offset,
            "cursor": cursor})

    def getObservation(self, feature: str | None = None,  # noqa: N802
                       sensor: str | list[str] | None = None, start: Any = None,
                       end: Any = None, latest: int | None = None,
                       properties: str | list[str] | None = None,
                       filter: str | list[str] | None = None, order: str = "asc",
                       limit: int | None = None, offset: int | None = None,
                       responseType: str = "json", cursor: str | None = None) -> Any:  # noqa: N803
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
                        sensor: str | list[str] | None = None, start: Any = None,
                        end: Any = None, properties: str | list[str] | None = None,
                        filter: str | list[str] | None = None, order: str = "asc",
                        pageSize: int = 1000) -> Iterator[dict[str, Any]]:  # noqa: N803
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
                            feature: str | None = None, sensor: str | list[str] | None = None,
                            start: Any = None, end: Any = None, latest: int | None = None,
                            properties: str | list[str] | None = None,
                            filter: str | list[str] | None = None, order: str = "asc",
                            progress: bool | None = None) -> Path:
        """Stream the matching observations to a CSV file (the upload format)."""
        params = self._query(feature, sensor, start, end, latest, properties, filter, order,
                             None, None)
        params["format"] = "csv"
        return self.http.download(f"{BASE}/observations", filename, params=params,
                                  progress=_auto_progress(progress))

    def deleteObservation(self, feature: str | None = None,  # noqa: N802
                          sensor: str | list[str] | None = None, start: Any = None,
                          end: Any = None) -> dict[str, Any]:
        """Delete the observations of sensors (or a feature's sensors) in a time span."""
        params = self._query(feature, sensor, start, end, None, None, None, None, None, None)
        return self.http.request("DELETE", f"{BASE}/observations", params=params)


def arrow_to_frame(content: bytes) -> pd.DataFrame:
    """An Arrow IPC stream as a DataFrame; integer counts stay integers (nullable)."""
    table = pa.ipc.open_stream(content).read_all()
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)

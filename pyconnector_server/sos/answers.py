"""The SOS answers, as the OpenAPI document describes them (routes return plain values;
these models only document them, the fuzz test checks the two agree)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Place(BaseModel):
    """Where a feature is: latitude and longitude in degrees, altitude in metres."""

    lat: float
    lon: float
    alt: float | None = None


class ItemOutcome(BaseModel):
    """One item of a list body: its place in the list and what became of it."""

    index: int
    code: int
    message: str
    field: str | None = None
    line: int | None = None


class Outcome(BaseModel):
    """TCUP's answer to a write: HTTP 200, the real status in ``code`` (201 created, 200
    done, 207 some items done, 4xx refused; ``field`` names the culprit), ``results``
    per item for a list body."""

    code: int
    message: str
    name: str | None = Field(None, description="The name created")
    field: str | None = None
    line: int | None = Field(None, description="The CSV line at fault")
    results: list[ItemOutcome] | None = None


class Deleted(BaseModel):
    code: int
    message: str
    deleted: int | None = Field(None, description="Values deleted")


class Feature(BaseModel):
    name: str
    description: str
    parent: str | None
    metadata: dict[str, Any]
    location: Place | None
    created: str = Field(description="TCUP format, UTC: 03-JUL-2015 07:40:00.000 UTC")
    updated: str = Field(description="TCUP format, UTC")


class Output(BaseModel):
    name: str
    type: str
    unit: str


class Sensor(BaseModel):
    name: str
    feature: str
    type: str = Field(description="atomic or composite")
    description: str
    metadata: dict[str, Any]
    members: list[str]
    outputs: list[Output]
    created: str = Field(description="TCUP format, UTC: 03-JUL-2015 07:40:00.000 UTC")
    updated: str = Field(description="TCUP format, UTC")


class ObservedProperty(BaseModel):
    name: str
    type: str = Field(description="quantity, count or text")
    unit: str
    description: str


class OutputValue(BaseModel):
    name: str
    value: float | str


class Record(BaseModel):
    starttime: str | int = Field(description="As timeFormat asks: TCUP (default, "
                                 "03-JUL-2015 07:40:00.000 UTC), ISO 8601 "
                                 "(2015-07-03T07:40:00Z) or epoch milliseconds")
    output: list[OutputValue]


class Observation(BaseModel):
    sensor: str
    feature: str
    record: list[Record]


class Observations(BaseModel):
    """A page of observations (``format=csv`` and ``format=arrow`` answer text/csv and an
    Arrow IPC stream instead)."""

    code: int
    count: int = Field(description="Records on this page")
    next: str | None = Field(description="Pass as cursor for the next page; null at the end")
    observations: list[Observation]


class Count(BaseModel):
    sensors: int
    features: int
    observedProperties: int  # noqa: N815 - TCUP's name


class SensorFeatureCount(BaseModel):
    sensors: int
    features: int


class Capabilities(BaseModel):
    count: SensorFeatureCount
    sensorOutput: dict[str, list[str]]  # noqa: N815 - TCUP's name

"""The SOS request bodies, typed; their fields use the checks of :mod:`.validate`.

Create bodies give defaults for what they leave out; update bodies change only the fields
they give (:meth:`~pyconnector_server.bodies.Model.given`): ``null`` clears a field where
that means something (a feature's parent or location).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from ..bodies import Model, rule
from . import validate as v

NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": v.NAME_MAX,
               "pattern": "^[^/\\u0000-\\u001f\\u007f]+$",
               "description": "1 to 255 characters, no '/' or control characters"}


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Name = Annotated[str, rule(v.name), WithJsonSchema(NAME_SCHEMA)]
PropertyName = Annotated[str, rule(v.property_name), WithJsonSchema(
    {**NAME_SCHEMA, "description": f"{NAME_SCHEMA['description']}; not one of "
     f"{', '.join(v.RESERVED)} (columns of every result)"})]
Text = Annotated[str, rule(v.text), WithJsonSchema({"type": "string"})]
Unit = Annotated[str, rule(v.unit), WithJsonSchema({"type": "string",
                                                    "maxLength": v.UNIT_MAX})]
Metadata = Annotated[dict[str, Any], rule(v.metadata), WithJsonSchema(
    {"type": "object", "description": f"Any JSON object, nested at most "
     f"{v.JSON_MAX_DEPTH} levels and {v.JSON_MAX_BYTES} bytes as JSON"})]
PropertyType = Annotated[Literal["quantity", "count", "text"], BeforeValidator(_lower)]
SensorKind = Annotated[Literal["atomic", "composite"], BeforeValidator(_lower)]


class Versioned(Model):
    """TCUP's ``version`` (its adapters send ``"1.0.1"``): optional in every SOS POST and
    PUT body, and not stored."""

    version: str | None = Field(None, max_length=64,
                                description="TCUP's body version: accepted, not stored")


class Location(Model):
    """A point: latitude and longitude in degrees, altitude in metres."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    alt: float | None = Field(None, ge=-1e6, le=1e6, allow_inf_nan=False)


class FeatureIn(Versioned):
    """A new feature of interest (a room, an engine, a patient)."""

    name: Name
    description: Text = ""
    metadata: Metadata = Field(default_factory=dict)
    location: Location | None = None
    parent: Name | None = Field(None, description="The parent feature's name")


class FeatureUpdate(Versioned):
    """The fields of a feature to change; ``parent: null`` makes it a root feature,
    ``location: null`` removes its location."""

    description: Text | None = None
    metadata: Metadata | None = None
    location: Location | None = None
    parent: Name | None = None


def _or_a_name(schema: dict[str, Any]) -> None:
    """Make the object schema ``schema`` "this object, or a name" (in place)."""
    described = {k: schema.pop(k) for k in ("title", "description") if k in schema}
    obj = dict(schema)
    schema.clear()
    schema.update(described, anyOf=[obj, {**NAME_SCHEMA, "description": "Just the name"}])


class OutputIn(Model):
    """A property a sensor reports: its name alone (a string) or this object. A new
    property is registered with the type given (default quantity)."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _or_a_name(schema))

    name: PropertyName
    type: PropertyType | None = None
    unit: Unit = ""
    description: Text = ""

    @model_validator(mode="before")
    @classmethod
    def _just_a_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class SensorIn(Versioned):
    """A new sensor of a feature: ``atomic``, or ``composite`` with member sensors."""

    name: Name
    feature: Name
    type: SensorKind = "atomic"
    description: Text = ""
    metadata: Metadata = Field(default_factory=dict)
    members: list[Name] = Field(default_factory=list,
                                description="Member sensors (composite sensors only)")
    outputs: list[OutputIn] = Field(default_factory=list)


class SensorUpdate(Versioned):
    """The fields of a sensor to change. ``outputs`` only adds outputs (observations may
    exist for the ones declared); ``members`` replaces them."""

    feature: Name | None = None
    type: SensorKind | None = None
    description: Text | None = None
    metadata: Metadata | None = None
    members: list[Name] | None = None
    outputs: list[OutputIn] | None = None


class PropertyIn(Versioned):
    """A new observed property: a quantity (a number), a count (an integer) or text."""

    name: PropertyName
    type: PropertyType = "quantity"
    unit: Unit = ""
    description: Text = ""


class PropertyUpdate(Versioned):
    """The fields of an observed property to change (its type only while it has no
    observations)."""

    type: PropertyType | None = None
    unit: Unit | None = None
    description: Text | None = None


# -- observations: published, not validated here (the insert has its own fast path) --------
class _Open(Model):
    """TCUP bodies carry more than the platform reads: other keys are accepted, ignored."""

    model_config = ConfigDict(extra="allow")


Time = Annotated[str | int, Field(description="A time in any accepted format (TCUP's "
                                              "'03-JUL-2015 13:10:00 IST', ISO 8601, epoch "
                                              "milliseconds)")]


class OutputValueIn(_Open):
    """One property's value: a number for quantity/count properties, else text. An
    unknown property is registered, typed by its first value."""

    name: PropertyName
    value: float | int | str | bool


class RecordIn(_Open):
    """The values a sensor observed at ``starttime``."""

    starttime: Time
    endtime: Time | None = None
    output: list[OutputValueIn] = Field(min_length=1)


class ObservationIn(_Open):
    """A sensor's records; ``feature``, when given, must be the sensor's feature."""

    sensor: Name
    feature: Name | None = None
    record: list[RecordIn] = Field(min_length=1)


class ObservationsIn(_Open):
    """TCUP's insert body. Each observation is stored whole or not at all, and reported
    in ``results`` (207 when some are refused)."""

    observations: list[ObservationIn] = Field(min_length=1)

"""Sensor Observation Service: features, sensors, observed properties, observations."""

from . import tables  # noqa: F401  (registers the SOS tables in the shared metadata)
from .routes import router
from .store import SosStore

__all__ = ["router", "SosStore"]

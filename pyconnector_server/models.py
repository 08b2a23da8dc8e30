"""Every table of the platform, registered in the one shared metadata."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from .services import Service, registered


def load_all(services: Sequence[Service] | None = None) -> None:
    """Import each service's tables (for migrations and schema checks)."""
    for service in registered() if services is None else services:
        importlib.import_module(service.tables)

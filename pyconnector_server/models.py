"""Every table of the platform, registered in the one shared metadata."""

from __future__ import annotations


def load_all() -> None:
    """Import each service's tables (for migrations and schema checks)."""
    from .datalake import tables as _dls  # noqa: F401
    from .sos import tables as _sos  # noqa: F401

"""Data Lake Service: files with metadata, a searchable catalog, shares and relations."""

from . import tables  # noqa: F401  (registers the DLS tables in the shared metadata)
from .routes import router
from .store import DatalakeStore

__all__ = ["router", "DatalakeStore"]

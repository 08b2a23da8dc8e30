"""Alembic revisions of the sos service's tables (one chain with the core's; see services.migration_dirs)."""

"""Alembic revisions of the workflow service's tables (one chain with the core's; see services.migration_dirs)."""

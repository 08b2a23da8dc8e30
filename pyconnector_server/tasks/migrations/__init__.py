"""Alembic revisions of the tasks service's tables (one chain with the core's; see services.migration_dirs)."""

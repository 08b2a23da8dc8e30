"""Alembic revisions of the routing service's tables (one chain with the core's; see services.migration_dirs)."""

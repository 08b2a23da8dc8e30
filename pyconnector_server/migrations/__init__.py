"""Alembic migrations of the platform's schema (see db.Database.migrate)."""

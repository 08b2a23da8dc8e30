"""The Alembic migrations build exactly the schema the code declares, on every database."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pyconnector_server.db import Database, metadata
from pyconnector_server.models import load_all
from pyconnector_server.settings import Settings


def test_migrated_schema_matches_the_tables_in_code(db_url: str, tmp_path: Path) -> None:
    load_all()
    db = Database(Settings.load({"data_dir": str(tmp_path), "db": db_url}, environ={})
                  .database_url)
    try:
        db.migrate()
        db.migrate()  # idempotent: a second start changes nothing
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, metadata) == []
            assert ctx.get_current_revision() is not None
    finally:
        db.close()

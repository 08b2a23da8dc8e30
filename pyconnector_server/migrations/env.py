"""Alembic environment: migrations run on the connection the platform hands over."""

from __future__ import annotations

from alembic import context

from pyconnector_server.db import metadata
from pyconnector_server.models import load_all

load_all()
connection = context.config.attributes["connection"]
# SQLite cannot ALTER most things in place; batch mode rebuilds tables when it must.
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()

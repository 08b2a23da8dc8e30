"""Helpers shared by the SOS route tests."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pyconnector_server.auth import tenant_for_key
from pyconnector_server.sos.tables import observation, sensor


def stored_values(api: Any) -> int:
    """Observation values stored for this client's tenant, read from the database."""
    db = api.app.state.db
    t = tenant_for_key(db, api.api_key)
    with db.read() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(
                observation.join(sensor, sensor.c.id == observation.c.sensor_id))
            .where(sensor.c.tenant_id == t.id)).scalar_one()

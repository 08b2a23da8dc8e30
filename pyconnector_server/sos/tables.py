"""SOS tables, in the platform's shared metadata."""

from __future__ import annotations

import sqlalchemy as sa

from ..db import metadata

_fk = dict(ondelete="CASCADE")

feature = sa.Table(
    "sos_feature", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("sos_feature.id", ondelete="SET NULL")),
    sa.Column("meta", sa.JSON, nullable=False, default=dict),
    sa.Column("location", sa.JSON),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
)

sensor = sa.Table(
    "sos_sensor", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("feature_id", sa.Integer, sa.ForeignKey("sos_feature.id", **_fk), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, default="atomic"),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("meta", sa.JSON, nullable=False, default=dict),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
    sa.Index("ix_sos_sensor_feature", "feature_id"),
)

# Members of a composite sensor (a weather station made of a thermometer, a hygrometer…).
sensor_member = sa.Table(
    "sos_sensor_member", metadata,
    sa.Column("composite_id", sa.Integer, sa.ForeignKey("sos_sensor.id", **_fk), primary_key=True),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("sos_sensor.id", **_fk), primary_key=True),
)

observed_property = sa.Table(
    "sos_observed_property", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    # quantity (a real number), count (an integer) or text.
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("unit", sa.String(64), nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.UniqueConstraint("tenant_id", "name"),
)

# The outputs a sensor declares or has reported; `capabilities.sensorOutput` reads this.
sensor_output = sa.Table(
    "sos_sensor_output", metadata,
    sa.Column("sensor_id", sa.Integer, sa.ForeignKey("sos_sensor.id", **_fk), primary_key=True),
    sa.Column("property_id", sa.Integer, sa.ForeignKey("sos_observed_property.id", **_fk),
              primary_key=True),
)

# One row per observed value. The key (sensor, property, time) makes a retried insert
# overwrite instead of duplicating, and keeps each series contiguous on disk, so a
# sensor's history of one property is one range scan. The tenant is the sensor's.
observation = sa.Table(
    "sos_observation", metadata,
    sa.Column("sensor_id", sa.Integer, primary_key=True),
    sa.Column("property_id", sa.Integer, primary_key=True),
    sa.Column("time_ms", sa.BigInteger, primary_key=True),
    sa.Column("num", sa.Float(precision=53)),
    sa.Column("text", sa.Text),
    sqlite_with_rowid=False,
)

# Observations posted with `x-routing: mq|both`, kept until message routing consumes them.
routing_outbox = sa.Table(
    "sos_routing_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("routing", sa.String(8), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    # The inserting process, when its broker is its own (the embedded router): only that
    # process can route the row. NULL when every process reaches one broker.
    sa.Column("origin", sa.String(32)),
)

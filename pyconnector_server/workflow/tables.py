"""Workflow Service tables, in the platform's shared metadata.

A **definition** (``processName`` + ``processVersion``, unique per tenant) is a DAG over a
tenant's tasks (their ids; ``start``/``end`` are implied). An **instance** (``I<id>``) of
it has its own copies of those tasks, one **step** per task: the engine runs a step's
copied task when every upstream step has succeeded. All of it lives here, so an instance
goes on (or stays recoverable) across a restart, and several platform processes share
the work: a step is claimed by a compare-and-set on its state.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..db import metadata

_fk = dict(ondelete="CASCADE")

definition = sa.Table(
    "workflow_definition", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("tasks", sa.JSON, nullable=False),  # base task ids, in the order given
    sa.Column("edges", sa.JSON, nullable=False),  # [[upstream id, downstream id], …]
    sa.Column("recovery_mode", sa.Boolean, nullable=False, default=False),
    sa.Column("cron", sa.String(128)),  # a schedule: an instance per slot
    sa.Column("time_zone", sa.String(64)),
    sa.Column("recurrence_limit", sa.Integer, nullable=False, default=0),
    sa.Column("fired", sa.Integer, nullable=False, default=0),
    sa.Column("next_fire_ms", sa.BigInteger, index=True),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "name", "version"),
    sqlite_autoincrement=True,
)

instance = sa.Table(
    "workflow_instance", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("definition_id", sa.Integer, sa.ForeignKey("workflow_definition.id", **_fk),
              nullable=False),
    # PREPARED, RUNNING, PAUSED, SUCCEEDED, FAILED, ABORTED
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("trigger", sa.String(16), nullable=False),  # manual, schedule
    sa.Column("recoveries", sa.Integer, nullable=False, default=0),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("started_ms", sa.BigInteger),
    sa.Column("ended_ms", sa.BigInteger),
    sqlite_autoincrement=True,
)

step = sa.Table(
    "workflow_step", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("instance_id", sa.Integer, sa.ForeignKey("workflow_instance.id", **_fk),
              nullable=False),
    sa.Column("base_task_id", sa.Integer, nullable=False),
    sa.Column("task_id", sa.Integer, nullable=False),  # the instance's copy
    # PENDING, RUNNING, SUCCEEDED, FAILED, ABORTED
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("run_number", sa.Integer),  # the copy's run for this attempt
    sa.Column("claimed_ms", sa.BigInteger),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.UniqueConstraint("instance_id", "base_task_id"),
    sqlite_autoincrement=True,
)

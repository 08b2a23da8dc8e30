"""Task Service tables, in the platform's shared metadata.

A tenant's **projects** (``P<id>``) hold **tasks** (``T<id>``); a task is deployed (a
runtime, an executable file, its dependency and input files, arguments) and runs, now or
on its schedule (a delayed time, or a cron pattern with a recurrence limit). Each run is
a row; the schedule lives here too, so it survives a restart, and a slot fires once: the
run row of a slot is unique per task (several platform processes racing for a slot, one
inserts it and runs it). Each platform process running tasks has an **owner** row it
renews while it lives (see :mod:`.owners`): the runs of an owner whose row lapsed or is
gone are ``lost``.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..db import metadata

_fk = dict(ondelete="CASCADE")

project = sa.Table(
    "task_project", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("tenant_id", "name"),
    sqlite_autoincrement=True,  # an id is never reused: a script may hold an old one
)

task = sa.Table(
    "task", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenant.id", **_fk), nullable=False),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("task_project.id", **_fk),
              nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),  # task, delayed, recurrent
    sa.Column("status", sa.String(16), nullable=False),
    # The deploy: what runs and how.
    sa.Column("runtime", sa.String(8)),
    sa.Column("filename", sa.String(255)),
    sa.Column("args", sa.JSON, nullable=False, default=list),
    sa.Column("deployed_ms", sa.BigInteger),
    sa.Column("links", sa.JSON, nullable=False, default=list),  # external output files
    # The schedule: a delayed time, or a cron pattern (as given, and as cron) with a limit.
    sa.Column("delayed_ms", sa.BigInteger),
    sa.Column("time_zone", sa.String(64)),
    sa.Column("cron", sa.String(128)),
    sa.Column("pattern", sa.JSON),
    sa.Column("recurrence_limit", sa.Integer, nullable=False, default=0),
    sa.Column("fired", sa.Integer, nullable=False, default=0),
    sa.Column("next_fire_ms", sa.BigInteger, index=True),  # None: nothing to fire
    sa.Column("schedule_paused", sa.Boolean, nullable=False, default=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("project_id", "name"),
    sqlite_autoincrement=True,
)

run = sa.Table(
    "task_run", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_id", sa.Integer, sa.ForeignKey("task.id", **_fk), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),  # 1, 2, … per task
    sa.Column("trigger", sa.String(16), nullable=False),  # start, restart, schedule
    sa.Column("slot_ms", sa.BigInteger),  # the schedule's slot it fires (unique per task)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(32), nullable=False),  # the platform process running it
    # another process was asked to stop it: its owner stops it (Runner.obey)
    sa.Column("stop_requested", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    sa.Column("queued_ms", sa.BigInteger, nullable=False),
    sa.Column("started_ms", sa.BigInteger),
    sa.Column("ended_ms", sa.BigInteger),
    sa.UniqueConstraint("task_id", "number"),
    sa.UniqueConstraint("task_id", "slot_ms"),
    sqlite_autoincrement=True,
)

owner = sa.Table(
    "task_owner", metadata,
    sa.Column("owner", sa.String(32), primary_key=True),  # a run's ``owner``
    sa.Column("host", sa.String(255), nullable=False),  # where it runs, for the operator
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_ms", sa.BigInteger, nullable=False),
    # Its last heartbeat, and when it counts as gone without another (the database's
    # clock on PostgreSQL, so the hosts' clocks need not agree).
    sa.Column("beat_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_ms", sa.BigInteger, nullable=False),
)

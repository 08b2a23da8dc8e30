"""task service: projects, tasks (deploys and schedules), runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'task_project',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant_id', 'name'),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'task',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('runtime', sa.String(length=8), nullable=True),
        sa.Column('filename', sa.String(length=255), nullable=True),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('deployed_ms', sa.BigInteger(), nullable=True),
        sa.Column('links', sa.JSON(), nullable=False),
        sa.Column('delayed_ms', sa.BigInteger(), nullable=True),
        sa.Column('time_zone', sa.String(length=64), nullable=True),
        sa.Column('cron', sa.String(length=128), nullable=True),
        sa.Column('pattern', sa.JSON(), nullable=True),
        sa.Column('recurrence_limit', sa.Integer(), nullable=False),
        sa.Column('fired', sa.Integer(), nullable=False),
        sa.Column('next_fire_ms', sa.BigInteger(), nullable=True),
        sa.Column('schedule_paused', sa.Boolean(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['project_id'], ['task_project.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_id', 'name'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_task_next_fire_ms', 'task', ['next_fire_ms'])
    op.create_table(
        'task_run',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('slot_ms', sa.BigInteger(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('exit_code', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('owner', sa.String(length=32), nullable=False),
        sa.Column('queued_ms', sa.BigInteger(), nullable=False),
        sa.Column('started_ms', sa.BigInteger(), nullable=True),
        sa.Column('ended_ms', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task_id', 'number'),
        sa.UniqueConstraint('task_id', 'slot_ms'),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table('task_run')
    op.drop_index('ix_task_next_fire_ms', table_name='task')
    op.drop_table('task')
    op.drop_table('task_project')

"""workflow service: definitions, instances, steps

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'workflow_definition',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('tasks', sa.JSON(), nullable=False),
        sa.Column('edges', sa.JSON(), nullable=False),
        sa.Column('recovery_mode', sa.Boolean(), nullable=False),
        sa.Column('cron', sa.String(length=128), nullable=True),
        sa.Column('time_zone', sa.String(length=64), nullable=True),
        sa.Column('recurrence_limit', sa.Integer(), nullable=False),
        sa.Column('fired', sa.Integer(), nullable=False),
        sa.Column('next_fire_ms', sa.BigInteger(), nullable=True),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('updated_ms', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant_id', 'name', 'version'),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_workflow_definition_next_fire_ms'), 'workflow_definition',
                    ['next_fire_ms'], unique=False)
    op.create_table(
        'workflow_instance',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('definition_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('recoveries', sa.Integer(), nullable=False),
        sa.Column('created_ms', sa.BigInteger(), nullable=False),
        sa.Column('started_ms', sa.BigInteger(), nullable=True),
        sa.Column('ended_ms', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['definition_id'], ['workflow_definition.id'],
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_workflow_instance_state'), 'workflow_instance', ['state'],
                    unique=False)
    op.create_table(
        'workflow_step',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=False),
        sa.Column('base_task_id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('run_number', sa.Integer(), nullable=True),
        sa.Column('claimed_ms', sa.BigInteger(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['instance_id'], ['workflow_instance.id'],
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('instance_id', 'base_task_id'),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table('workflow_step')
    op.drop_index(op.f('ix_workflow_instance_state'), table_name='workflow_instance')
    op.drop_table('workflow_instance')
    op.drop_index(op.f('ix_workflow_definition_next_fire_ms'),
                  table_name='workflow_definition')
    op.drop_table('workflow_definition')

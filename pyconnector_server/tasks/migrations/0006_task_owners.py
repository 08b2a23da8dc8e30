"""task service: live task-runner processes (owner heartbeats)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'task_owner',
        sa.Column('owner', sa.String(length=32), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_ms', sa.BigInteger(), nullable=False),
        sa.Column('beat_ms', sa.BigInteger(), nullable=False),
        sa.Column('expires_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('owner'),
    )


def downgrade() -> None:
    op.drop_table('task_owner')

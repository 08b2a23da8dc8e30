"""task service: a run's stop asked of another process

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('task_run') as batch:
        batch.add_column(sa.Column('stop_requested', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('task_run') as batch:
        batch.drop_column('stop_requested')

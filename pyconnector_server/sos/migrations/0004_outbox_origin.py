"""routing outbox: the inserting process of rows only it can route (embedded router)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sos_routing_outbox') as batch:
        batch.add_column(sa.Column('origin', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sos_routing_outbox') as batch:
        batch.drop_column('origin')

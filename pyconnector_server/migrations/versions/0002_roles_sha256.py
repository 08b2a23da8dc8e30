"""key roles and prefixes; SHA-256 of data lake files

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keys made before roles existed could do everything: they stay admin keys.
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=16), nullable=False,
                                      server_default='admin'))
        batch_op.add_column(sa.Column('prefix', sa.String(length=12), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('dls_file', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('dls_file', schema=None) as batch_op:
        batch_op.drop_column('sha256')
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_column('prefix')
        batch_op.drop_column('role')

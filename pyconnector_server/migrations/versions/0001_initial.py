"""initial schema: tenants, keys, SOS, DLS

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 01:03:23.654267
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sos_observation',
    sa.Column('sensor_id', sa.Integer(), nullable=False),
    sa.Column('property_id', sa.Integer(), nullable=False),
    sa.Column('time_ms', sa.BigInteger(), nullable=False),
    sa.Column('num', sa.Float(precision=53), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('sensor_id', 'property_id', 'time_ms'),
    sqlite_with_rowid=False
    )
    op.create_table('tenant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('jwt_secret', sa.String(length=255), nullable=True),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('api_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_table('dls_tenant',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('quota_bytes', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id')
    )
    op.create_table('dls_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash'),
    sa.UniqueConstraint('tenant_id', 'name')
    )
    op.create_table('sos_feature',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('location', sa.JSON(), nullable=True),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['sos_feature.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'name')
    )
    op.create_table('sos_observed_property',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('unit', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'name')
    )
    op.create_table('sos_routing_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('routing', sa.String(length=8), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('dls_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=600), nullable=False),
    sa.Column('directory', sa.String(length=255), nullable=False),
    sa.Column('savepoint', sa.String(length=50), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('comment', sa.String(length=255), nullable=False),
    sa.Column('blob_key', sa.String(length=255), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['dls_user.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['dls_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('blob_key'),
    sa.UniqueConstraint('owner_id', 'path')
    )
    with op.batch_alter_table('dls_file', schema=None) as batch_op:
        batch_op.create_index('ix_dls_file_owner_directory', ['owner_id', 'directory'], unique=False)
        batch_op.create_index('ix_dls_file_tenant_created', ['tenant_id', 'created_ms'], unique=False)

    op.create_table('sos_sensor',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('feature_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['feature_id'], ['sos_feature.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'name')
    )
    with op.batch_alter_table('sos_sensor', schema=None) as batch_op:
        batch_op.create_index('ix_sos_sensor_feature', ['feature_id'], unique=False)

    op.create_table('dls_meta',
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('value', sa.String(length=1024), nullable=False),
    sa.Column('num', sa.Float(precision=53), nullable=True),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['file_id'], ['dls_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['dls_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('file_id', 'key')
    )
    with op.batch_alter_table('dls_meta', schema=None) as batch_op:
        batch_op.create_index('ix_dls_meta_key_num', ['key', 'num', 'file_id'], unique=False)
        batch_op.create_index('ix_dls_meta_key_value', ['key', 'value', 'file_id'], unique=False)

    op.create_table('dls_relation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['dls_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['dls_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['dls_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_id', 'target_id', 'name')
    )
    with op.batch_alter_table('dls_relation', schema=None) as batch_op:
        batch_op.create_index('ix_dls_relation_target', ['target_id'], unique=False)

    op.create_table('dls_share',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('grantee_id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=True),
    sa.Column('directory', sa.String(length=255), nullable=True),
    sa.Column('permissions', sa.String(length=3), nullable=False),
    sa.Column('created_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['dls_file.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['grantee_id'], ['dls_user.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['dls_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dls_share', schema=None) as batch_op:
        batch_op.create_index('ix_dls_share_file', ['file_id'], unique=False)
        batch_op.create_index('ix_dls_share_grantee', ['grantee_id'], unique=False)

    op.create_table('sos_sensor_member',
    sa.Column('composite_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['composite_id'], ['sos_sensor.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['sos_sensor.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('composite_id', 'member_id')
    )
    op.create_table('sos_sensor_output',
    sa.Column('sensor_id', sa.Integer(), nullable=False),
    sa.Column('property_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['property_id'], ['sos_observed_property.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sensor_id'], ['sos_sensor.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sensor_id', 'property_id')
    )


def downgrade() -> None:
    op.drop_table('sos_sensor_output')
    op.drop_table('sos_sensor_member')
    with op.batch_alter_table('dls_share', schema=None) as batch_op:
        batch_op.drop_index('ix_dls_share_grantee')
        batch_op.drop_index('ix_dls_share_file')

    op.drop_table('dls_share')
    with op.batch_alter_table('dls_relation', schema=None) as batch_op:
        batch_op.drop_index('ix_dls_relation_target')

    op.drop_table('dls_relation')
    with op.batch_alter_table('dls_meta', schema=None) as batch_op:
        batch_op.drop_index('ix_dls_meta_key_value')
        batch_op.drop_index('ix_dls_meta_key_num')

    op.drop_table('dls_meta')
    with op.batch_alter_table('sos_sensor', schema=None) as batch_op:
        batch_op.drop_index('ix_sos_sensor_feature')

    op.drop_table('sos_sensor')
    with op.batch_alter_table('dls_file', schema=None) as batch_op:
        batch_op.drop_index('ix_dls_file_tenant_created')
        batch_op.drop_index('ix_dls_file_owner_directory')

    op.drop_table('dls_file')
    op.drop_table('sos_routing_outbox')
    op.drop_table('sos_observed_property')
    op.drop_table('sos_feature')
    op.drop_table('dls_user')
    op.drop_table('dls_tenant')
    op.drop_table('api_key')
    op.drop_table('tenant')
    op.drop_table('sos_observation')

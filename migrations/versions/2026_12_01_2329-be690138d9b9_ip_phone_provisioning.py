"""IP phones' MAC and model; provisioning access, fetches and one-time links

Revision ID: be690138d9b9
Revises: 262f0a4783ec
Create Date: 2026-12-01 23:29:22.800016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = 'be690138d9b9'
down_revision: str | None = '262f0a4783ec'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The device table first: SQLite alters it by copying it, and no table refers to it yet.
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('model', sa.Enum('yealink', 'grandstream', 'polycom', 'fanvil', 'snom', name='phonemodel', native_enum=False, length=20), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_device_tenant_id_mac'), ['tenant_id', 'mac'])

    op.create_table('provisioning_access',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('secret_encrypted', sa.String(length=512), nullable=False),
    sa.Column('allowed_networks', sa.JSON(), nullable=False),
    sa.Column('secret_rotated_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_provisioning_access_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provisioning_access')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_provisioning_access_tenant_id'))
    )
    op.create_table('provisioning_fetch',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=True),
    sa.Column('mac', sa.String(length=12), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('client_address', sa.String(length=45), nullable=False),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.Column('outcome', sa.Enum('served', 'address_refused', 'unauthorized', 'not_enabled', 'unknown_file', 'unknown_mac', 'device_disabled', 'link_used', 'link_expired', 'throttled', name='fetchoutcome', native_enum=False, length=30), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('fetched_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_provisioning_fetch_device_id_device'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_provisioning_fetch_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provisioning_fetch'))
    )
    with op.batch_alter_table('provisioning_fetch', schema=None) as batch_op:
        batch_op.create_index('ix_provisioning_fetch_device_id_fetched_at', ['device_id', 'fetched_at'], unique=False)
        batch_op.create_index('ix_provisioning_fetch_tenant_id_fetched_at', ['tenant_id', 'fetched_at'], unique=False)

    op.create_table('provisioning_link',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', app.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_provisioning_link_device_id_device'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_provisioning_link_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provisioning_link')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_provisioning_link_token_hash'))
    )
    with op.batch_alter_table('provisioning_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provisioning_link_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_provisioning_link_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('provisioning_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provisioning_link_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_provisioning_link_device_id'))

    op.drop_table('provisioning_link')
    with op.batch_alter_table('provisioning_fetch', schema=None) as batch_op:
        batch_op.drop_index('ix_provisioning_fetch_tenant_id_fetched_at')
        batch_op.drop_index('ix_provisioning_fetch_device_id_fetched_at')

    op.drop_table('provisioning_fetch')
    op.drop_table('provisioning_access')
    # The device table last: SQLite alters it by copying it, once no table refers to it.
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_device_tenant_id_mac'), type_='unique')
        batch_op.drop_column('model')
        batch_op.drop_column('mac')


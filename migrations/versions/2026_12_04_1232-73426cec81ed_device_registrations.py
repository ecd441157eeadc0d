"""Devices' registrations, as the SIP edges report them; only a new table (device is not altered)

Revision ID: 73426cec81ed
Revises: be690138d9b9
Create Date: 2026-12-04 12:32:29.562158
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = '73426cec81ed'
down_revision: str | None = 'be690138d9b9'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('registration',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('edge', sa.String(length=64), nullable=False),
    sa.Column('contact', sa.String(length=512), nullable=False),
    sa.Column('transport', sa.Enum('udp', 'tcp', 'tls', 'ws', 'wss', name='transport', native_enum=False, length=8), nullable=True),
    sa.Column('source_address', sa.String(length=64), nullable=True),
    sa.Column('source_port', sa.Integer(), nullable=True),
    sa.Column('user_agent', sa.String(length=256), nullable=True),
    sa.Column('expires_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('live', sa.Boolean(), nullable=False),
    sa.Column('seen_at', sa.Double(), nullable=False),
    sa.Column('registered_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_registration_device_id_device'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_registration_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration')),
    sa.UniqueConstraint('device_id', 'edge', 'contact', name=op.f('uq_registration_device_id_edge_contact'))
    )
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_registration_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_registration_expires_at'))

    op.drop_table('registration')

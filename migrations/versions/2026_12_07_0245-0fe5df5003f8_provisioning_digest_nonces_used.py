"""The digest nonces provisioning requests used, with the highest count each was used with

Revision ID: 0fe5df5003f8
Revises: d6636e60029f
Create Date: 2026-12-07 02:45:10.318204
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = '0fe5df5003f8'
down_revision: str | None = 'd6636e60029f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('provisioning_nonce',
    sa.Column('nonce', sa.String(length=80), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('highest_count', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', app.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], name=op.f('fk_provisioning_nonce_tenant_id_tenant'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('nonce', name=op.f('pk_provisioning_nonce'))
    )
    with op.batch_alter_table('provisioning_nonce', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provisioning_nonce_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_provisioning_nonce_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('provisioning_nonce', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provisioning_nonce_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_provisioning_nonce_expires_at'))

    op.drop_table('provisioning_nonce')

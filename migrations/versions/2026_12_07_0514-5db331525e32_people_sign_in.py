"""People sign in: API keys that expire, and the actor of an audit entry as a key or a person

Revision ID: 5db331525e32
Revises: 0fe5df5003f8
Create Date: 2026-12-07 05:14:22.956059
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = '5db331525e32'
down_revision: str | None = '0fe5df5003f8'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', app.db.base.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_kind', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('actor_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('actor_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('actor_email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('actor_client_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('actor_address', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_audit_entry_tenant_id_actor_id', ['tenant_id', 'actor_id'], unique=False)

    # The entries written so far were all made with keys.
    audit = sa.table(
        'audit_entry',
        sa.column('actor_key_id', sa.Uuid()),
        sa.column('actor_key_name', sa.String()),
        sa.column('actor_kind', sa.String()),
        sa.column('actor_id', sa.String()),
        sa.column('actor_name', sa.String()),
    )
    bind = op.get_bind()
    keys = bind.execute(
        sa.select(audit.c.actor_key_id).where(audit.c.actor_key_id.is_not(None)).distinct()
    ).scalars()
    for key_id in list(keys):
        bind.execute(
            audit.update()
            .where(audit.c.actor_key_id == key_id)
            .values(actor_kind='api_key', actor_id=str(key_id), actor_name=audit.c.actor_key_name)
        )


def downgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_tenant_id_actor_id')
        batch_op.drop_column('actor_address')
        batch_op.drop_column('actor_client_id')
        batch_op.drop_column('actor_email')
        batch_op.drop_column('actor_name')
        batch_op.drop_column('actor_id')
        batch_op.drop_column('actor_kind')

    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_column('expires_at')


"""The outbound policy: each tenant's dial plan, destination classes and limits on an agent's
outbound calls and registrations; each agent's own classes, limit and suspension; the class of
each authorized call

Revision ID: 4f7a2c9e1b35
Revises: 6b9e2d4f8a17
Create Date: 2026-12-07 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '4f7a2c9e1b35'
down_revision: str | None = '6b9e2d4f8a17'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEFAULT_CLASSES = '["emergency", "internal", "domestic", "mobile", "toll_free"]'

# Plain ADD and DROP COLUMN, never SQLite's batch mode: it copies a table and drops the old one,
# and dropping the old tenant table would delete every row that refers to it.
_TENANT_COLUMNS = (
    sa.Column('dial_plan', sa.JSON(), nullable=True),
    sa.Column('outbound_classes', sa.JSON(), nullable=False, server_default=_DEFAULT_CLASSES),
    sa.Column('max_concurrent_calls', sa.Integer(), nullable=True, server_default='4'),
    sa.Column('max_calls_per_minute', sa.Integer(), nullable=True, server_default='10'),
    sa.Column('max_contacts_web', sa.Integer(), nullable=False, server_default='5'),
    sa.Column('max_contacts_softphone', sa.Integer(), nullable=False, server_default='2'),
    sa.Column('max_contacts_ip_phone', sa.Integer(), nullable=False, server_default='1'),
)
_USER_COLUMNS = (
    sa.Column('extra_classes', sa.JSON(), nullable=False, server_default='[]'),
    sa.Column('removed_classes', sa.JSON(), nullable=False, server_default='[]'),
    sa.Column('max_concurrent_calls', sa.Integer(), nullable=True),
    sa.Column('outbound_suspended', sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column('outbound_suspended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outbound_lifted_at', sa.DateTime(timezone=True), nullable=True),
)


def upgrade() -> None:
    for column in _TENANT_COLUMNS:
        op.add_column('tenant', column)
    for column in _USER_COLUMNS:
        op.add_column('user_account', column)
    op.add_column(
        'call_authorization', sa.Column('destination_class', sa.String(length=16), nullable=True)
    )
    op.create_index(
        'ix_call_authorization_user_id_created_at',
        'call_authorization',
        ['user_id', 'created_at'],
        unique=False,
    )
    op.create_index(
        'ix_call_authorization_open',
        'call_authorization',
        ['user_id', 'expires_at'],
        unique=False,
        postgresql_where=sa.text('released_at IS NULL'),
        sqlite_where=sa.text('released_at IS NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_call_authorization_open', table_name='call_authorization')
    op.drop_index('ix_call_authorization_user_id_created_at', table_name='call_authorization')
    op.drop_column('call_authorization', 'destination_class')
    for column in reversed(_USER_COLUMNS):
        op.drop_column('user_account', column.name)
    for column in reversed(_TENANT_COLUMNS):
        op.drop_column('tenant', column.name)

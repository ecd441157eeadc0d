"""One search text per user: its own words, its devices' and its extensions', in one indexed column;
the Users table's newest first from an index; external references in byte order on PostgreSQL

Revision ID: 8d2f4b6a1c3e
Revises: 3c1e5a7b9d20
Create Date: 2026-12-07 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '8d2f4b6a1c3e'
down_revision: str | None = '3c1e5a7b9d20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fill() -> None:
    """Every stored user's search text, as the service sets it (`refresh_search_text`)."""
    users = sa.table(
        'user_account',
        sa.column('id', sa.Uuid()),
        sa.column('search_key', sa.Text()),
        sa.column('search_text', sa.Text()),
    )
    devices = sa.table('device', sa.column('user_id', sa.Uuid()), sa.column('search_key', sa.Text()))
    extensions = sa.table('extension', sa.column('user_id', sa.Uuid()), sa.column('number', sa.String()))
    device_words = (
        sa.select(sa.func.coalesce(sa.func.aggregate_strings(devices.c.search_key, ''), ''))
        .where(devices.c.user_id == users.c.id)
        .scalar_subquery()
    )
    numbers = (
        sa.select(sa.func.coalesce(sa.func.aggregate_strings(sa.literal(' ') + extensions.c.number, ''), ''))
        .where(extensions.c.user_id == users.c.id)
        .scalar_subquery()
    )
    op.get_bind().execute(users.update().values(search_text=users.c.search_key + device_words + numbers))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    # NOT NULL with a default, added in place on SQLite (see 3c1e5a7b9d20), then filled.
    op.add_column('user_account', sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    _fill()
    op.create_index('ix_user_account_tenant_id_created_at', 'user_account', ['tenant_id', 'created_at'], unique=False)
    if postgres:
        # The unique index on (tenant_id, external_ref) then serves the export's order.
        op.alter_column('user_account', 'external_ref', existing_type=sa.String(200), type_=sa.String(200, collation='C'), existing_nullable=True)
        op.drop_index('ix_device_search_key_trgm', table_name='device')
        op.drop_index('ix_user_account_search_key_trgm', table_name='user_account')
        op.create_index('ix_user_account_search_text_trgm', 'user_account', ['search_text'], unique=False, postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('user_account', 'external_ref', existing_type=sa.String(200, collation='C'), type_=sa.String(200), existing_nullable=True)
        op.drop_index('ix_user_account_search_text_trgm', table_name='user_account')
        op.create_index('ix_user_account_search_key_trgm', 'user_account', ['search_key'], unique=False, postgresql_using='gin', postgresql_ops={'search_key': 'gin_trgm_ops'})
        op.create_index('ix_device_search_key_trgm', 'device', ['search_key'], unique=False, postgresql_using='gin', postgresql_ops={'search_key': 'gin_trgm_ops'})
    op.drop_index('ix_user_account_tenant_id_created_at', table_name='user_account')
    op.drop_column('user_account', 'search_text')

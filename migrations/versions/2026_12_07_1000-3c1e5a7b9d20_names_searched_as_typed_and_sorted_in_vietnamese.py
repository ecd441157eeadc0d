"""Names searched as operators type them and sorted in Vietnamese order; the quota's own version

Revision ID: 3c1e5a7b9d20
Revises: 5db331525e32
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.names import name_columns, search_words

revision: str = '3c1e5a7b9d20'
down_revision: str | None = '5db331525e32'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def _fill() -> None:
    """The new columns of the rows already stored, as the service makes them for new ones."""
    conn = op.get_bind()
    users = sa.table(
        'user_account',
        sa.column('id', sa.Uuid()),
        sa.column('display_name', sa.String()),
        sa.column('email', sa.String()),
        sa.column('search_key', sa.Text()),
        sa.column('name_sort', sa.LargeBinary()),
        sa.column('given_name_sort', sa.LargeBinary()),
    )
    rows = [
        {'user_id': row.id, **name_columns(row.display_name, row.email)}
        for row in conn.execute(sa.select(users.c.id, users.c.display_name, users.c.email))
    ]
    statement = (
        users.update()
        .where(users.c.id == sa.bindparam('user_id'))
        .values(
            search_key=sa.bindparam('search_key'),
            name_sort=sa.bindparam('name_sort'),
            given_name_sort=sa.bindparam('given_name_sort'),
        )
    )
    for start in range(0, len(rows), _BATCH):
        conn.execute(statement, rows[start : start + _BATCH])
    devices = sa.table(
        'device',
        sa.column('id', sa.Uuid()),
        sa.column('name', sa.String()),
        sa.column('search_key', sa.Text()),
    )
    rows = [
        {'device_id': row.id, 'search_key': search_words([row.name])}
        for row in conn.execute(sa.select(devices.c.id, devices.c.name))
    ]
    statement = (
        devices.update()
        .where(devices.c.id == sa.bindparam('device_id'))
        .values(search_key=sa.bindparam('search_key'))
    )
    for start in range(0, len(rows), _BATCH):
        conn.execute(statement, rows[start : start + _BATCH])


# Added NOT NULL with a default, then filled: SQLite adds such a column in place, where any
# other change of a column would copy the table, and dropping the old copy of user_account
# would delete every device with it (ON DELETE CASCADE).
_FILLED = {
    'search_key': (sa.Text(), sa.text("''")),
    'name_sort': (sa.LargeBinary(), sa.text("''")),
    'given_name_sort': (sa.LargeBinary(), sa.text("''")),
}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    op.add_column('user_account', sa.Column('quota_version', sa.Integer(), server_default='1', nullable=False))
    for column, (type_, empty) in _FILLED.items():
        op.add_column('user_account', sa.Column(column, type_, server_default=empty, nullable=False))
    op.add_column('device', sa.Column('search_key', sa.Text(), server_default=sa.text("''"), nullable=False))
    _fill()
    if postgres:
        # Every row is written with them from now on: a row without them is a mistake.
        for column, (type_, _) in _FILLED.items():
            op.alter_column('user_account', column, existing_type=type_, server_default=None)
        op.alter_column('device', 'search_key', existing_type=sa.Text(), server_default=None)
    op.create_index('ix_user_account_tenant_id_name_sort', 'user_account', ['tenant_id', 'name_sort'], unique=False)
    op.create_index('ix_user_account_tenant_id_given_name_sort', 'user_account', ['tenant_id', 'given_name_sort'], unique=False)
    if postgres:
        op.create_index('ix_user_account_search_key_trgm', 'user_account', ['search_key'], unique=False, postgresql_using='gin', postgresql_ops={'search_key': 'gin_trgm_ops'})
        op.create_index('ix_device_search_key_trgm', 'device', ['search_key'], unique=False, postgresql_using='gin', postgresql_ops={'search_key': 'gin_trgm_ops'})


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_device_search_key_trgm', table_name='device')
        op.drop_index('ix_user_account_search_key_trgm', table_name='user_account')
    op.drop_index('ix_user_account_tenant_id_given_name_sort', table_name='user_account')
    op.drop_index('ix_user_account_tenant_id_name_sort', table_name='user_account')
    # In place on SQLite too (ALTER TABLE ... DROP COLUMN), for the reason above.
    op.drop_column('device', 'search_key')
    for column in ('given_name_sort', 'name_sort', 'search_key', 'quota_version'):
        op.drop_column('user_account', column)

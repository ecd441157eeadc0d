"""Refused provisioning fetches that proved nothing counted on one row per address and minute

Revision ID: d6636e60029f
Revises: 73426cec81ed
Create Date: 2026-12-07 02:12:50.095944
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = 'd6636e60029f'
down_revision: str | None = '73426cec81ed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every row so far stands for one request: its last is its first.
    with op.batch_alter_table('provisioning_fetch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_fetched_at', app.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('count', sa.Integer(), server_default='1', nullable=False))
    op.execute('UPDATE provisioning_fetch SET last_fetched_at = fetched_at')
    with op.batch_alter_table('provisioning_fetch', schema=None) as batch_op:
        batch_op.alter_column('last_fetched_at', existing_type=app.db.base.UTCDateTime(timezone=True), nullable=False)


def downgrade() -> None:
    # A counted row becomes the record of its first request.
    with op.batch_alter_table('provisioning_fetch', schema=None) as batch_op:
        batch_op.drop_column('count')
        batch_op.drop_column('last_fetched_at')

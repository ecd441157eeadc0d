"""A SCIM directory's userName for each agent, unique in the tenant

Revision ID: 6b9e2d4f8a17
Revises: 8d2f4b6a1c3e
Create Date: 2026-12-07 15:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '6b9e2d4f8a17'
down_revision: str | None = '8d2f4b6a1c3e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('user_account', sa.Column('user_name', sa.String(length=200), nullable=True))
    op.create_index(
        'uq_user_account_tenant_id_user_name', 'user_account', ['tenant_id', 'user_name'], unique=True
    )


def downgrade() -> None:
    op.drop_index('uq_user_account_tenant_id_user_name', table_name='user_account')
    op.drop_column('user_account', 'user_name')

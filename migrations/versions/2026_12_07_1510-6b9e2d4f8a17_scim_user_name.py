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
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_name', sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f('uq_user_account_tenant_id_user_name'), ['tenant_id', 'user_name']
        )


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_user_account_tenant_id_user_name'), type_='unique')
        batch_op.drop_column('user_name')

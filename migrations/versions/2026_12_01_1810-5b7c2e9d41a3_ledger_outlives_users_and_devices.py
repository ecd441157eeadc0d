"""The call ledger outlives the users and devices that made its calls

Revision ID: 5b7c2e9d41a3
Revises: 725e52e1d65c
Create Date: 2026-12-01 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b7c2e9d41a3"
down_revision: str | None = "725e52e1d65c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEDGER = ("call_authorization", "call_record")


def upgrade() -> None:
    for table in _LEDGER:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_user_id_user_account", type_="foreignkey")
            batch_op.drop_constraint(f"fk_{table}_device_id_device", type_="foreignkey")


def downgrade() -> None:
    for table in _LEDGER:
        # The constraints cannot come back over rows of users and devices deleted since.
        op.execute(
            sa.text(f"DELETE FROM {table} WHERE user_id NOT IN (SELECT id FROM user_account)")
        )
        op.execute(
            sa.text(
                f"UPDATE {table} SET device_id = NULL "
                "WHERE device_id IS NOT NULL AND device_id NOT IN (SELECT id FROM device)"
            )
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                f"fk_{table}_user_id_user_account",
                "user_account",
                ["user_id"],
                ["id"],
                ondelete="CASCADE",
            )
            batch_op.create_foreign_key(
                f"fk_{table}_device_id_device", "device", ["device_id"], ["id"], ondelete="SET NULL"
            )

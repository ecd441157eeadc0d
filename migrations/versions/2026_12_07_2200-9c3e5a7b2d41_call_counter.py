"""Each agent's outbound calls counted as they are authorized: the calls open and the calls of
the last two minutes, set from the call authorizations stored so far

Revision ID: 9c3e5a7b2d41
Revises: 4f7a2c9e1b35
Create Date: 2026-12-07 22:00:00.000000
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import app.db.base
from app.clock import utcnow

revision: str = '9c3e5a7b2d41'
down_revision: str | None = '4f7a2c9e1b35'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The agents with a live hold or a call in the last minute, counted as the service counts them.
_COUNT_STORED = sa.text(
    """
    INSERT INTO call_counter (user_id, open_calls, open_calls_expiry, calls_window,
        calls_in_window, calls_in_last_window)
    SELECT a.user_id,
        SUM(CASE WHEN a.released_at IS NULL AND a.expires_at > :now AND a.allowed
            THEN 1 ELSE 0 END),
        MIN(CASE WHEN a.released_at IS NULL AND a.expires_at > :now AND a.allowed
            THEN a.expires_at END),
        :window,
        SUM(CASE WHEN a.created_at > :since THEN 1 ELSE 0 END),
        0
    FROM call_authorization a JOIN user_account u ON u.id = a.user_id
    WHERE NOT a.emergency
      AND ((a.released_at IS NULL AND a.expires_at > :now AND a.allowed)
           OR a.created_at > :since)
    GROUP BY a.user_id
    """
).bindparams(
    sa.bindparam('now', type_=app.db.base.UTCDateTime()),
    sa.bindparam('since', type_=app.db.base.UTCDateTime()),
    sa.bindparam('window', type_=app.db.base.UTCDateTime()),
)


def upgrade() -> None:
    op.create_table(
        'call_counter',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('open_calls', sa.Integer(), nullable=False),
        sa.Column('open_calls_expiry', app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('calls_window', app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column('calls_in_window', sa.Integer(), nullable=False),
        sa.Column('calls_in_last_window', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['user_id'],
            ['user_account.id'],
            name=op.f('fk_call_counter_user_id_user_account'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_call_counter')),
    )
    now = utcnow()
    op.get_bind().execute(
        _COUNT_STORED,
        {
            'now': now,
            'since': now - timedelta(seconds=60),
            'window': now.replace(second=0, microsecond=0),
        },
    )


def downgrade() -> None:
    op.drop_table('call_counter')

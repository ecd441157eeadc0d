"""The minute ledger: each month's charged seconds, the holds of calls in progress, every
reported call, and the closed months with their limits."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db.base import Base, IdMixin


class MonthlyUsage(Base):
    """Outbound seconds charged to a user in one calendar month of the tenant's time zone."""

    __tablename__ = "monthly_usage"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    used_seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class MonthRollover(Base):
    """A tenant's month that has been closed: its existence makes the rollover run once."""

    __tablename__ = "month_rollover"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuotaHistory(Base):
    """A user's limit for a closed month, as it stood when the month closed."""

    __tablename__ = "quota_history"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    limit_minutes: Mapped[int | None]


class _Call:
    """What an authorization and a ledger entry both say of a call."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    # Not foreign keys: the ledger outlives the user or device that made a call, so that a
    # call reported after its device or user was deleted is still recorded and charged.
    user_id: Mapped[uuid.UUID]
    device_id: Mapped[uuid.UUID | None]
    call_id: Mapped[str] = mapped_column(String(255))
    destination: Mapped[str] = mapped_column(String(64))
    emergency: Mapped[bool] = mapped_column(default=False)
    period: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallAuthorization(IdMixin, _Call, Base):
    """The answer given to an outbound call, kept so a retry gets the same one; a granted call
    to a limited user holds `held_seconds` of the month's remainder until released or expired,
    and every granted call counts as one of the agent's calls at once until then."""

    __tablename__ = "call_authorization"
    __table_args__ = (
        UniqueConstraint("tenant_id", "call_id"),
        Index("ix_call_authorization_user_id_released_at", "user_id", "released_at"),
        # An agent's calls of the last minute (the velocity limit).
        Index("ix_call_authorization_user_id_created_at", "user_id", "created_at"),
        # An agent's calls in progress (the concurrent-call limit): only the live holds, not
        # the refusals and ended calls that pile up over the months.
        Index(
            "ix_call_authorization_open",
            "user_id",
            "expires_at",
            postgresql_where=text("released_at IS NULL"),
            sqlite_where=text("released_at IS NULL"),
        ),
    )

    allowed: Mapped[bool]
    reason: Mapped[str] = mapped_column(String(32))
    max_duration_seconds: Mapped[int | None]
    destination_class: Mapped[str | None] = mapped_column(String(16))
    held_seconds: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]


class CallCounter(Base):
    """An agent's outbound calls counted as they are authorized, so that the concurrent-call
    and velocity limits are checked in the statement that stores the call's answer.

    `open_calls` is never below the agent's live holds (raised with each granted call,
    lowered when one is refused or reported before its expiry, set from the holds when
    recounted) and equals them while `open_calls_expiry`, a lower bound of the counted holds'
    expiries, is still ahead: a hold that expires unreported is only noticed by a recount.
    `calls_in_window` and `calls_in_last_window` are the calls asked for in the minute that
    starts at `calls_window` and in the minute before it: together never fewer than the calls
    of the last 60 seconds."""

    __tablename__ = "call_counter"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    open_calls: Mapped[int] = mapped_column(default=0)
    open_calls_expiry: Mapped[datetime | None]
    calls_window: Mapped[datetime | None]
    calls_in_window: Mapped[int] = mapped_column(default=0)
    calls_in_last_window: Mapped[int] = mapped_column(default=0)


class CallRecord(IdMixin, _Call, Base):
    """The ledger: one row per reported outbound call, charged once."""

    __tablename__ = "call_record"
    __table_args__ = (
        UniqueConstraint("tenant_id", "call_id"),
        Index("ix_call_record_user_id_started_at", "user_id", "started_at"),
    )

    started_at: Mapped[datetime]
    duration_seconds: Mapped[int]
    charged_seconds: Mapped[int]

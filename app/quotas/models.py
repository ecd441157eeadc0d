import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, utcnow


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

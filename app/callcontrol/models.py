import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, IdMixin, utcnow


class CallAuthorization(IdMixin, Base):
    """The answer given to an outbound call, kept so a retry gets the same one; a granted call
    to a limited user holds `held_seconds` of the month's remainder until released or expired."""

    __tablename__ = "call_authorization"
    __table_args__ = (
        UniqueConstraint("tenant_id", "call_id"),
        Index("ix_call_authorization_user_id_released_at", "user_id", "released_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("device.id", ondelete="SET NULL")
    )
    call_id: Mapped[str] = mapped_column(String(255))
    destination: Mapped[str] = mapped_column(String(64))
    allowed: Mapped[bool]
    reason: Mapped[str] = mapped_column(String(32))
    emergency: Mapped[bool] = mapped_column(default=False)
    max_duration_seconds: Mapped[int | None]
    held_seconds: Mapped[int] = mapped_column(default=0)
    period: Mapped[str] = mapped_column(String(7))
    expires_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CallRecord(IdMixin, Base):
    """The ledger: one row per reported outbound call, charged once."""

    __tablename__ = "call_record"
    __table_args__ = (
        UniqueConstraint("tenant_id", "call_id"),
        Index("ix_call_record_user_id_started_at", "user_id", "started_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("device.id", ondelete="SET NULL")
    )
    call_id: Mapped[str] = mapped_column(String(255))
    destination: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    duration_seconds: Mapped[int]
    charged_seconds: Mapped[int]
    period: Mapped[str] = mapped_column(String(7))
    emergency: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db.base import SEQUENCE, Base, IdMixin, TimestampMixin, VersionMixin


class WebhookEndpoint(IdMixin, TimestampMixin, VersionMixin, Base):
    """A URL of a tenant's that receives its events (all of them, or the types listed)."""

    __tablename__ = "webhook_endpoint"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(200))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    secret_encrypted: Mapped[str] = mapped_column(String(512))
    # After a rotation the old secret signs too, until it expires: receivers switch at leisure.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(String(512))
    previous_secret_expires_at: Mapped[datetime | None]
    # Since when every delivery has failed (none succeeded since): days of it disable it.
    failing_since: Mapped[datetime | None]


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


class WebhookDelivery(IdMixin, Base):
    """One event for one endpoint: attempted until it succeeds or its schedule runs out."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_seq"),
        Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),
        # The worker's "is an earlier event of this resource still pending" check.
        Index(
            "ix_webhook_delivery_endpoint_id_resource_key",
            "endpoint_id",
            "resource_key",
            "event_seq",
        ),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoint.id", ondelete="CASCADE")
    )
    event_seq: Mapped[int] = mapped_column(SEQUENCE, ForeignKey("event.seq", ondelete="CASCADE"))
    resource_key: Mapped[str] = mapped_column(String(100))
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=20), default=DeliveryStatus.pending
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    leased_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(IdMixin, Base):
    """One try of a delivery: when, what the receiver answered, how long it took."""

    __tablename__ = "webhook_attempt"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]

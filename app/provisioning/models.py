import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db.base import Base, IdMixin, TimestampMixin


class ProvisioningAccess(IdMixin, TimestampMixin, Base):
    """How a tenant's phones prove who they are when they fetch their files: one user name and
    secret for all of them, and the networks they may fetch from."""

    __tablename__ = "provisioning_access"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), unique=True
    )
    username: Mapped[str] = mapped_column(String(64))
    # Encrypted, not hashed: HTTP digest needs the secret itself to check a response.
    secret_encrypted: Mapped[str] = mapped_column(String(512))
    allowed_networks: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_rotated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FetchOutcome(StrEnum):
    served = "served"
    address_refused = "address_refused"
    unauthorized = "unauthorized"
    not_enabled = "not_enabled"
    unknown_file = "unknown_file"
    unknown_mac = "unknown_mac"
    device_disabled = "device_disabled"
    link_used = "link_used"
    link_expired = "link_expired"
    throttled = "throttled"


class ProvisioningFetch(IdMixin, Base):
    """A request for a provisioning file or link, served or refused. Refusals of requests that
    proved nothing (no or wrong credentials, a refused address, throttled, a used link) are
    counted on one row per tenant, client address, outcome, device and minute, so that no
    flood of them costs more than that."""

    __tablename__ = "provisioning_fetch"
    __table_args__ = (
        Index("ix_provisioning_fetch_tenant_id_fetched_at", "tenant_id", "fetched_at"),
        Index("ix_provisioning_fetch_device_id_fetched_at", "device_id", "fetched_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    # Kept when the device is deleted: the tenant's record of what was asked stays whole.
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("device.id", ondelete="SET NULL")
    )
    mac: Mapped[str | None] = mapped_column(String(12))
    filename: Mapped[str] = mapped_column(String(255))
    client_address: Mapped[str] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[FetchOutcome] = mapped_column(Enum(FetchOutcome, native_enum=False, length=30))
    status_code: Mapped[int]
    # The first request the row stands for, the latest, and how many there were: the file
    # name, MAC and user agent are the first one's.
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(default=1, server_default="1")


class ProvisioningLink(IdMixin, Base):
    """A one-time, expiring link to a softphone's provisioning file (the QR code's URL)."""

    __tablename__ = "provisioning_link"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("device.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the link's token: the token itself is only in the QR code.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ProvisioningNonce(Base):
    """A digest nonce some request used, with the highest count (`nc`) used with it: a response
    with that count or a lower one is a replay. Kept until the nonce expires."""

    __tablename__ = "provisioning_nonce"

    nonce: Mapped[str] = mapped_column(String(80), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    highest_count: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(index=True)

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Double, Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin, VersionMixin


class DeviceKind(StrEnum):
    web = "web"
    softphone = "softphone"
    ip_phone = "ip_phone"


class PhoneModel(StrEnum):
    """The vendor family of an IP phone: which provisioning file it fetches, in which form."""

    yealink = "yealink"
    grandstream = "grandstream"
    polycom = "polycom"
    fanvil = "fanvil"
    snom = "snom"


class Device(IdMixin, TimestampMixin, VersionMixin, Base):
    """A SIP account: one per device an agent uses."""

    __tablename__ = "device"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name_key"),
        # A phone's MAC address names its provisioning file: one device per MAC in a tenant.
        UniqueConstraint("tenant_id", "mac"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    # Lower-cased name: SIP usernames are unique per tenant whatever their case.
    name_key: Mapped[str] = mapped_column(String(64))
    # The words a search finds the device's user by (`app.names.search_words` of the name),
    # which join the user's search text.
    search_key: Mapped[str] = mapped_column(Text)
    kind: Mapped[DeviceKind] = mapped_column(Enum(DeviceKind, native_enum=False, length=20))
    enabled: Mapped[bool] = mapped_column(default=True)
    password_encrypted: Mapped[str] = mapped_column(String(512))
    ha1: Mapped[str] = mapped_column(String(32))
    ha1_sha256: Mapped[str] = mapped_column(String(64))
    # IP phones only: 12 lower-case hex digits, and the vendor family of the phone.
    mac: Mapped[str | None] = mapped_column(String(12))
    model: Mapped[PhoneModel | None] = mapped_column(Enum(PhoneModel, native_enum=False, length=20))


class Transport(StrEnum):
    """The transport a phone registered over, as the edge saw it."""

    udp = "udp"
    tcp = "tcp"
    tls = "tls"
    ws = "ws"
    wss = "wss"


class Registration(IdMixin, Base):
    """One contact of a device at one SIP edge, as the edge last reported it. `seen_at` is the
    edge's time of the last report that touched the row: a report older than it changes
    nothing (last writer wins)."""

    __tablename__ = "registration"
    # Its index also serves every read by device.
    __table_args__ = (UniqueConstraint("device_id", "edge", "contact"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    edge: Mapped[str] = mapped_column(String(64))
    contact: Mapped[str] = mapped_column(String(512))
    transport: Mapped[Transport | None] = mapped_column(
        Enum(Transport, native_enum=False, length=8)
    )
    source_address: Mapped[str | None] = mapped_column(String(64))
    source_port: Mapped[int | None]
    user_agent: Mapped[str | None] = mapped_column(String(256))
    # The expiry job looks for live rows past it.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    live: Mapped[bool]
    # Unix seconds of the edge's clock.
    seen_at: Mapped[float] = mapped_column(Double)
    registered_at: Mapped[datetime]
    updated_at: Mapped[datetime]

from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin, VersionMixin
from app.dialing import DEFAULT_OUTBOUND_CLASSES

DEFAULT_EMERGENCY_NUMBERS = ["113", "114", "115"]
DEFAULT_MAX_CONCURRENT_CALLS = 4
DEFAULT_MAX_CALLS_PER_MINUTE = 10
# Contacts one SIP account may hold at once, by its kind: a web device is a browser with
# several tabs; a phone registers once (a second contact is most often its own, from a new
# address after a restart, which replaces the oldest).
DEFAULT_MAX_CONTACTS = {"web": 5, "softphone": 2, "ip_phone": 1}


class Tenant(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "tenant"

    name: Mapped[str] = mapped_column(String(200))
    sip_domain: Mapped[str] = mapped_column(String(253), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    emergency_numbers: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: list(DEFAULT_EMERGENCY_NUMBERS)
    )
    billing_increment_seconds: Mapped[int] = mapped_column(default=60)
    # The outbound policy (app.dialing): the dial plan (null: Vietnam's), the destination
    # classes agents may call unless one has more or fewer, and the limits on an agent's
    # outbound calls (null: none).
    dial_plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outbound_classes: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: list(DEFAULT_OUTBOUND_CLASSES)
    )
    max_concurrent_calls: Mapped[int | None] = mapped_column(default=DEFAULT_MAX_CONCURRENT_CALLS)
    max_calls_per_minute: Mapped[int | None] = mapped_column(default=DEFAULT_MAX_CALLS_PER_MINUTE)
    max_contacts_web: Mapped[int] = mapped_column(default=DEFAULT_MAX_CONTACTS["web"])
    max_contacts_softphone: Mapped[int] = mapped_column(default=DEFAULT_MAX_CONTACTS["softphone"])
    max_contacts_ip_phone: Mapped[int] = mapped_column(default=DEFAULT_MAX_CONTACTS["ip_phone"])

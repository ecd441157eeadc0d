from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin, VersionMixin

DEFAULT_EMERGENCY_NUMBERS = ["113", "114", "115"]


class Tenant(IdMixin, TimestampMixin, VersionMixin, Base):
    __tablename__ = "tenant"

    name: Mapped[str] = mapped_column(String(200))
    sip_domain: Mapped[str] = mapped_column(String(253), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Ho_Chi_Minh")
    emergency_numbers: Mapped[list[str]] = mapped_column(
        JSON, default=lambda: list(DEFAULT_EMERGENCY_NUMBERS)
    )
    billing_increment_seconds: Mapped[int] = mapped_column(default=60)

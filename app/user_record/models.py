import uuid

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin, VersionMixin


class User(IdMixin, TimestampMixin, VersionMixin, Base):
    """An agent of the call center."""

    __tablename__ = "user_account"
    __table_args__ = (UniqueConstraint("tenant_id", "external_ref"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    external_ref: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    outbound_allowed: Mapped[bool] = mapped_column(default=True)
    auto_answer: Mapped[bool] = mapped_column(default=False)
    limit_minutes: Mapped[int | None]

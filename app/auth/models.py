import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db.base import Base, IdMixin


class Role(StrEnum):
    admin = "admin"
    operator = "operator"
    viewer = "viewer"
    call_control = "call_control"
    # A tenant's SCIM directory (Okta, Entra ID, Keycloak): /scim/v2 and nothing else.
    scim = "scim"


class ApiKey(IdMixin, Base):
    __tablename__ = "api_key"

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    # After it, the key answers 401; null: it never expires.
    expires_at: Mapped[datetime | None]

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db.base import SEQUENCE, Base


class Event(Base):
    """A change other services learn of: delivered to the tenant's webhooks (and the bus) in
    `seq` order. Thin: the type, the ids, the changed fields; never a secret."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_fanned_out_at_seq", "fanned_out_at", "seq"),
        Index("ix_event_published_at_seq", "published_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(SEQUENCE, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))
    # Events that must happen once (a month's 80 % crossing): their key, else null.
    once_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    fanned_out_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who changed what: the actor (an API key, or a person or client signed in with a token),
    the action, the resource, and the changed fields before and after (secrets redacted)."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_tenant_id_occurred_at", "tenant_id", "occurred_at"),
        Index("ix_audit_entry_resource_id", "resource_id"),
        Index("ix_audit_entry_tenant_id_actor_id", "tenant_id", "actor_id"),
    )

    seq: Mapped[int] = mapped_column(SEQUENCE, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_key_id: Mapped[uuid.UUID | None]
    actor_key_name: Mapped[str | None] = mapped_column(String(100))
    actor_role: Mapped[str | None] = mapped_column(String(20))
    # api_key or token; the key's id or the token's subject; its name, e-mail and client; the
    # address the request came from.
    actor_kind: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(255))
    actor_name: Mapped[str | None] = mapped_column(String(200))
    actor_email: Mapped[str | None] = mapped_column(String(320))
    actor_client_id: Mapped[str | None] = mapped_column(String(255))
    actor_address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(128))

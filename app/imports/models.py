import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.db.base import Base, IdMixin


class ImportStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ImportJob(IdMixin, Base):
    """A bulk import that runs in the background: its progress, then its report. The new
    devices' passwords are kept encrypted until they are shown, once."""

    __tablename__ = "import_job"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    dry_run: Mapped[bool]
    status: Mapped[ImportStatus] = mapped_column(Enum(ImportStatus, native_enum=False, length=20))
    rows_total: Mapped[int]
    rows_done: Mapped[int] = mapped_column(default=0)
    detail: Mapped[str | None] = mapped_column(String(500))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new_devices_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

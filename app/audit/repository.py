"""The queries of the audit trail."""

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import AuditEntry


async def list_entries(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    resource_type: str | None,
    resource_id: str | None,
    user_id: uuid.UUID | None,
    actor_key_id: uuid.UUID | None,
    actor_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEntry], int]:
    """The tenant's entries, newest first, filtered."""
    where: list[ColumnElement[bool]] = [AuditEntry.tenant_id == tenant_id]
    if resource_type is not None:
        where.append(AuditEntry.resource_type == resource_type)
    if resource_id is not None:
        where.append(AuditEntry.resource_id == resource_id)
    if user_id is not None:
        where.append(AuditEntry.user_id == user_id)
    if actor_key_id is not None:
        where.append(AuditEntry.actor_key_id == actor_key_id)
    if actor_id is not None:
        where.append(AuditEntry.actor_id == actor_id)
    if since is not None:
        where.append(AuditEntry.occurred_at >= since)
    if until is not None:
        where.append(AuditEntry.occurred_at < until)
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*where))
    rows = await session.scalars(
        select(AuditEntry)
        .where(*where)
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.seq.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total or 0


async def delete_older_than(session: AsyncSession, before: datetime) -> int:
    """Deletes every tenant's entries from before `before`; returns how many."""
    result = await session.execute(delete(AuditEntry).where(AuditEntry.occurred_at < before))
    return int(getattr(result, "rowcount", 0) or 0)

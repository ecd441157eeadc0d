"""The queries of the audit trail."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import AuditEntry
from app.pagination import COUNT_CAP


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    # Up to COUNT_CAP; `capped` when there are more.
    total: int
    capped: bool
    # The sort key of the page's last entry, when a next page may follow.
    last: tuple[datetime, int] | None


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
    after: tuple[datetime, int] | None = None,
) -> AuditPage:
    """The tenant's entries, newest first, filtered; from `after` (the sort key of the last
    entry of the page before) when reading by cursor. The count stops at COUNT_CAP."""
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
    counted = select(AuditEntry.seq).where(*where).limit(COUNT_CAP + 1).subquery()
    total = await session.scalar(select(func.count()).select_from(counted)) or 0
    page = select(AuditEntry).where(*where)
    if after is not None:
        at, seq = after
        page = page.where(
            or_(
                AuditEntry.occurred_at < at,
                and_(AuditEntry.occurred_at == at, AuditEntry.seq < seq),
            )
        )
    rows = list(
        await session.scalars(
            page.order_by(AuditEntry.occurred_at.desc(), AuditEntry.seq.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    last = (rows[-1].occurred_at, rows[-1].seq) if len(rows) == limit else None
    return AuditPage(rows, min(total, COUNT_CAP), total > COUNT_CAP, last)


async def delete_older_than(session: AsyncSession, before: datetime) -> int:
    """Deletes every tenant's entries from before `before`; returns how many."""
    result = await session.execute(delete(AuditEntry).where(AuditEntry.occurred_at < before))
    return int(getattr(result, "rowcount", 0) or 0)

"""The audit trail as operators read it, and how long it is kept."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.clock import utcnow
from app.db.session import Database
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
    return await repository.list_entries(
        session,
        tenant_id=tenant_id,
        resource_type=resource_type,
        resource_id=resource_id,
        user_id=user_id,
        actor_key_id=actor_key_id,
        actor_id=actor_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


async def prune(db: Database, *, retention_days: int) -> int:
    """Forgets the entries older than the retention."""
    async with db.session_scope() as session:
        return await repository.delete_older_than(
            session, utcnow() - timedelta(days=retention_days)
        )

"""The audit trail as operators read it, and how long it is kept."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.repository import AuditPage
from app.clock import utcnow
from app.db.session import Database
from app.errors import Code, InvalidInput
from app.pagination import PageParams, decode_cursor, encode_cursor


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
        after=after,
    )


async def prune(db: Database, *, retention_days: int) -> int:
    """Forgets the entries older than the retention."""
    async with db.session_scope() as session:
        return await repository.delete_older_than(
            session, utcnow() - timedelta(days=retention_days)
        )


def cursor_after(cursor: str | None, params: PageParams) -> tuple[datetime, int] | None:
    """The sort key a cursor of the trail carries (occurred_at, seq)."""
    if cursor is None:
        return None
    at, seq = decode_cursor(cursor, params=params, arity=2)
    try:
        if not isinstance(at, str) or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError
        occurred_at = datetime.fromisoformat(at)
        if occurred_at.tzinfo is None:
            raise ValueError
    except ValueError:
        raise InvalidInput("query.cursor", Code.cursor_invalid) from None
    return occurred_at, seq


def next_cursor(page: AuditPage) -> str | None:
    if page.last is None:
        return None
    at, seq = page.last
    return encode_cursor([at.isoformat(), seq])

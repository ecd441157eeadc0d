import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.models import ApiKey, Role
from app.auth.principal import Principal


async def touch_key(conn: AsyncConnection, *, key_hash: str, now: datetime) -> Principal | None:
    """Find a key by its hash and record its use, in one statement."""
    row = (
        await conn.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == key_hash)
            .values(last_used_at=now)
            .returning(ApiKey.id, ApiKey.tenant_id, ApiKey.role, ApiKey.name, ApiKey.expires_at)
        )
    ).first()
    if row is None:
        return None
    return Principal(
        id=row.id,
        tenant_id=row.tenant_id,
        role=Role(row.role),
        name=row.name,
        expires_at=row.expires_at,
    )


async def list_keys(session: AsyncSession, *, tenant_id: uuid.UUID | None) -> list[ApiKey]:
    """A tenant's keys, or the platform keys (tenant_id None)."""
    scope = ApiKey.tenant_id.is_(None) if tenant_id is None else ApiKey.tenant_id == tenant_id
    result = await session.scalars(select(ApiKey).where(scope).order_by(ApiKey.created_at))
    return list(result)


async def delete_key(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, key_id: uuid.UUID
) -> str | None:
    """Delete a key; returns its hash, or None when there was no such key in that scope."""
    scope = ApiKey.tenant_id.is_(None) if tenant_id is None else ApiKey.tenant_id == tenant_id
    return await session.scalar(
        delete(ApiKey).where(ApiKey.id == key_id, scope).returning(ApiKey.key_hash)
    )

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.models import ApiKey, Role


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    key_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: Role
    name: str = ""


async def touch_key(conn: AsyncConnection, *, key_hash: str, now: datetime) -> KeyIdentity | None:
    """Find a key by its hash and record its use, in one statement."""
    row = (
        await conn.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == key_hash)
            .values(last_used_at=now)
            .returning(ApiKey.id, ApiKey.tenant_id, ApiKey.role, ApiKey.name)
        )
    ).first()
    return KeyIdentity(row.id, row.tenant_id, Role(row.role), row.name) if row else None


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

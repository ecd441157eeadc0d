import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.tenants.models import Tenant


async def tenant_exists(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> bool:
    return (await conn.scalar(select(Tenant.id).where(Tenant.id == tenant_id))) is not None


async def get_tenant(
    session: AsyncSession, *, tenant_id: uuid.UUID, for_update: bool = False
) -> Tenant | None:
    return await session.get(Tenant, tenant_id, with_for_update=for_update)


async def list_tenants(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[Tenant], int]:
    total = await count_tenants(session)
    rows = await session.scalars(
        select(Tenant).order_by(Tenant.created_at, Tenant.id).limit(limit).offset(offset)
    )
    return list(rows), total


async def count_tenants(session: AsyncSession) -> int:
    return (await session.scalar(select(func.count()).select_from(Tenant))) or 0

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.tenants.models import Tenant
from app.users.models import User


async def get_user_and_tenant(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, for_update: bool = False
) -> tuple[User, Tenant] | None:
    query = (
        select(User, Tenant)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(User.id == user_id, User.tenant_id == tenant_id)
    )
    if for_update:
        query = query.with_for_update(of=User)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None

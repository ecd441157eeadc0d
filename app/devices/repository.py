import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.devices.models import Device
from app.tenants.models import Tenant
from app.users.models import User


async def get_device_and_tenant(
    session: AsyncSession, *, tenant_id: uuid.UUID, device_id: uuid.UUID, for_update: bool = False
) -> tuple[Device, Tenant] | None:
    query = (
        select(Device, Tenant)
        .join(Tenant, Tenant.id == Device.tenant_id)
        .where(Device.id == device_id, Device.tenant_id == tenant_id)
    )
    if for_update:
        query = query.with_for_update(of=Device)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def list_user_devices(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> list[Device]:
    """The devices of these users, in the order they were added."""
    if not user_ids:
        return []
    rows = await session.scalars(
        select(Device)
        .where(Device.tenant_id == tenant_id, Device.user_id.in_(user_ids))
        .order_by(Device.created_at, Device.id)
    )
    return list(rows)


async def list_tenant_devices(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[Device]:
    return list(await session.scalars(select(Device).where(Device.tenant_id == tenant_id)))


async def device_names(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> list[str]:
    """The SIP user names of the tenant's devices (of one user's, when given)."""
    query = select(Device.name).where(Device.tenant_id == tenant_id)
    if user_id is not None:
        query = query.where(Device.user_id == user_id)
    return list(await session.scalars(query))


async def owner_name(session: AsyncSession, *, device: Device) -> str:
    name = await session.scalar(select(User.display_name).where(User.id == device.user_id))
    return name or ""

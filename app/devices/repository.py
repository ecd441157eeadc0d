import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.devices.models import Device
from app.users.models import User


async def get_device(
    session: AsyncSession, *, tenant_id: uuid.UUID, device_id: uuid.UUID
) -> Device | None:
    return await session.scalar(
        select(Device).where(Device.id == device_id, Device.tenant_id == tenant_id)
    )


async def list_user_devices(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[Device]:
    rows = await session.scalars(
        select(Device)
        .where(Device.tenant_id == tenant_id, Device.user_id == user_id)
        .order_by(Device.created_at, Device.id)
    )
    return list(rows)


async def list_tenant_devices(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[Device]:
    return list(await session.scalars(select(Device).where(Device.tenant_id == tenant_id)))


async def get_device_and_owner_name(
    session: AsyncSession, *, tenant_id: uuid.UUID, device_id: uuid.UUID
) -> tuple[Device, str] | None:
    row = (
        await session.execute(
            select(Device, User.display_name)
            .join(User, User.id == Device.user_id)
            .where(Device.id == device_id, Device.tenant_id == tenant_id)
        )
    ).first()
    return (row[0], row[1]) if row else None

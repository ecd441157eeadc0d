"""The Users table's query: a tenant's users, searched by name, email, extension or device name,
sorted and paged."""

import uuid
from typing import Literal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.devices.models import Device
from app.extensions.models import Extension
from app.user_record.models import User

UserSort = Literal["display_name", "-display_name", "created_at", "-created_at"]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(tenant_id: uuid.UUID, search: str | None) -> Select[User]:
    query = select(User).where(User.tenant_id == tenant_id)
    if search:
        pattern = f"%{_escape_like(search.lower())}%"
        query = query.where(
            or_(
                func.lower(User.display_name).like(pattern, escape="\\"),
                func.lower(User.email).like(pattern, escape="\\"),
                select(Extension.id)
                .where(Extension.user_id == User.id, Extension.number.like(pattern, escape="\\"))
                .exists(),
                select(Device.id)
                .where(Device.user_id == User.id, Device.name_key.like(pattern, escape="\\"))
                .exists(),
            )
        )
    return query


async def list_users(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    search: str | None,
    sort: UserSort,
    limit: int,
    offset: int,
) -> tuple[list[User], int]:
    query = _filtered(tenant_id, search)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    column = User.created_at if sort.lstrip("-") == "created_at" else User.display_name
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = await session.scalars(query.order_by(order, User.id).limit(limit).offset(offset))
    return list(rows), total or 0

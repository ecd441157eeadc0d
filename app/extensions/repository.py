import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.extensions.models import Extension
from app.users.models import User


async def list_user_extensions(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> list[Extension]:
    """The extensions of these users, by number."""
    if not user_ids:
        return []
    rows = await session.scalars(
        select(Extension)
        .where(Extension.tenant_id == tenant_id, Extension.user_id.in_(user_ids))
        .order_by(Extension.number)
    )
    return list(rows)


async def delete_user_extension(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, number: str
) -> bool:
    deleted = await session.scalar(
        delete(Extension)
        .where(
            Extension.tenant_id == tenant_id,
            Extension.user_id == user_id,
            Extension.number == number,
        )
        .returning(Extension.id)
    )
    return deleted is not None


async def find_holder(
    session: AsyncSession, *, tenant_id: uuid.UUID, number: str
) -> tuple[Extension, str] | None:
    row = (
        await session.execute(
            select(Extension, User.display_name)
            .join(User, User.id == Extension.user_id)
            .where(Extension.tenant_id == tenant_id, Extension.number == number)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def taken_numbers(session: AsyncSession, *, tenant_id: uuid.UUID, digits: int) -> set[str]:
    rows = await session.scalars(
        select(Extension.number).where(
            Extension.tenant_id == tenant_id, func.length(Extension.number) == digits
        )
    )
    return set(rows)


async def tenant_extension_numbers(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(
        select(Extension.number).where(Extension.tenant_id == tenant_id).order_by(Extension.number)
    )
    return list(rows)

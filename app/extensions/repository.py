import uuid
from collections.abc import Collection
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.sql import insert_many, one_of
from app.extensions.models import Extension
from app.user_record.models import User

_EXTENSIONS = cast(Table, Extension.__table__)


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


# Many extensions at once: the import's and the export's reads and writes.


class StoredExtension(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    number: str


async def stored_extensions_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: Collection[uuid.UUID]
) -> list[StoredExtension]:
    if not user_ids:
        return []
    rows = await session.execute(
        select(Extension.id, Extension.user_id, Extension.number).where(
            Extension.tenant_id == tenant_id, one_of(session, Extension.user_id, user_ids)
        )
    )
    return [StoredExtension(*row) for row in rows]


async def number_holders(
    session: AsyncSession, *, tenant_id: uuid.UUID, numbers: Collection[str]
) -> dict[str, uuid.UUID]:
    """Who holds each of these numbers (the free ones are absent)."""
    if not numbers:
        return {}
    rows = await session.execute(
        select(Extension.number, Extension.user_id).where(
            Extension.tenant_id == tenant_id, Extension.number.in_(numbers)
        )
    )
    return {row.number: row.user_id for row in rows}


async def insert_extensions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New extensions' rows (each made by `service.new_extension`), as multi-row INSERTs."""
    await insert_many(session, _EXTENSIONS, rows)


async def delete_extensions(session: AsyncSession, *, ids: Collection[uuid.UUID]) -> None:
    if ids:
        await session.execute(delete(_EXTENSIONS).where(_EXTENSIONS.c.id.in_(ids)))

"""The Users table's query: a tenant's users, searched by the words of their name, email,
extensions or device names, sorted and paged."""

import uuid
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.devices.models import Device
from app.extensions.models import Extension
from app.names import query_words
from app.user_record.models import User


class UserSort(StrEnum):
    """The Users table's orders; '-' first: the other way round."""

    display_name = "display_name"
    display_name_desc = "-display_name"
    given_name = "given_name"
    given_name_desc = "-given_name"
    created_at = "created_at"
    created_at_desc = "-created_at"


_ORDER = {
    "display_name": User.name_sort,
    "given_name": User.given_name_sort,
    "created_at": User.created_at,
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _word_found(tenant_id: uuid.UUID, word: str) -> ColumnElement[bool]:
    """A user one of whose words (of the name or email, of a device's name) or extensions
    starts with `word`."""
    escaped = _escape_like(word)
    starts_a_word = f"% {escaped}%"
    return or_(
        User.search_key.like(starts_a_word, escape="\\"),
        User.id.in_(
            select(Device.user_id).where(
                Device.tenant_id == tenant_id, Device.search_key.like(starts_a_word, escape="\\")
            )
        ),
        User.id.in_(
            select(Extension.user_id).where(
                Extension.tenant_id == tenant_id,
                Extension.number.like(f"{escaped}%", escape="\\"),
            )
        ),
    )


def _filtered(tenant_id: uuid.UUID, search: str | None) -> Select[User]:
    query = select(User).where(User.tenant_id == tenant_id)
    words = query_words(search or "")
    if words:
        query = query.where(and_(*(_word_found(tenant_id, word) for word in words)))
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
    column = _ORDER[sort.lstrip("-")]
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = await session.scalars(query.order_by(order, User.id).limit(limit).offset(offset))
    return list(rows), total or 0

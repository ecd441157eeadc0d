"""The Users table's query: a tenant's users, searched by the words of their name, email,
extensions or device names, sorted and paged by offset or read on by keyset from where a page
ended, in every order."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CompoundSelect, Select, and_, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.devices.models import Device
from app.extensions.models import Extension
from app.names import query_words
from app.pagination import COUNT_CAP
from app.user_record.models import User


class UserSort(StrEnum):
    """The Users table's orders; '-' first: the other way round."""

    display_name = "display_name"
    display_name_desc = "-display_name"
    given_name = "given_name"
    given_name_desc = "-given_name"
    created_at = "created_at"
    created_at_desc = "-created_at"


# A row's place in an order: its value of the sorted column, then its id (ties).
SortValue = bytes | datetime
Position = tuple[SortValue, uuid.UUID]

_ORDER = {
    "display_name": User.name_sort,
    "given_name": User.given_name_sort,
    "created_at": User.created_at,
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _found_by(tenant_id: uuid.UUID, word: str) -> CompoundSelect[tuple[uuid.UUID]]:
    """The users one of whose words (of the name or email, of a device's name) or extensions
    starts with `word`: a union of three index reads (PostgreSQL's trigram indexes on the
    words, the extensions' numbers by prefix), not a scan of the tenant's users."""
    escaped = _escape_like(word)
    starts_a_word = f"% {escaped}%"
    found = [
        select(User.id).where(
            User.tenant_id == tenant_id, User.search_key.like(starts_a_word, escape="\\")
        ),
        select(Device.user_id).where(
            Device.tenant_id == tenant_id, Device.search_key.like(starts_a_word, escape="\\")
        ),
    ]
    if word.isdigit():  # an extension is digits alone
        found.append(
            select(Extension.user_id).where(
                Extension.tenant_id == tenant_id, Extension.number.like(f"{word}%")
            )
        )
    return union(*found)


def _filtered(tenant_id: uuid.UUID, search: str | None) -> Select[User]:
    query = select(User).where(User.tenant_id == tenant_id)
    for word in query_words(search or ""):
        query = query.where(User.id.in_(_found_by(tenant_id, word)))
    return query


@dataclass(frozen=True, slots=True)
class UsersPage:
    users: list[User]
    # Up to COUNT_CAP; `capped` when there are more.
    total: int
    capped: bool
    # The place of the page's last user, when a next page may follow.
    last: Position | None


def sort_column(sort: UserSort) -> str:
    """The name of the column an order sorts by (`display_name` and `-display_name` share it)."""
    return sort.lstrip("-")


async def list_users(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    search: str | None,
    sort: UserSort,
    limit: int,
    offset: int,
    after: Position | None = None,
) -> UsersPage:
    """A page of the tenant's users in `sort`, ties by id (the same way round), from `after`
    (the place of the last user of the page before) when reading by cursor. The count stops at
    COUNT_CAP."""
    query = _filtered(tenant_id, search)
    counted = query.with_only_columns(User.id).limit(COUNT_CAP + 1).subquery()
    total = await session.scalar(select(func.count()).select_from(counted)) or 0
    column = _ORDER[sort_column(sort)]
    descending = sort.startswith("-")
    if after is not None:
        value, user_id = after
        if descending:
            query = query.where(or_(column < value, and_(column == value, User.id < user_id)))
        else:
            query = query.where(or_(column > value, and_(column == value, User.id > user_id)))
    order = (column.desc(), User.id.desc()) if descending else (column.asc(), User.id.asc())
    users = list(await session.scalars(query.order_by(*order).limit(limit).offset(offset)))
    last = None
    if len(users) == limit:
        final = users[-1]
        last = (getattr(final, column.key), final.id)
    return UsersPage(users, min(total, COUNT_CAP), total > COUNT_CAP, last)

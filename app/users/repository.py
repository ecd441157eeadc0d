"""The Users table's query: a tenant's users, searched by the words of their name, email,
extensions or device names, sorted and paged by offset or read on by keyset from where a page
ended, in every order."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.names import query_words
from app.pagination import COUNT_CAP, SEARCH_COUNT_CAP
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


def _filtered(tenant_id: uuid.UUID, search: str | None) -> Select[User]:
    """The tenant's users each of the search's words starts a word of: of the name or email,
    of a device's name, or an extension (the user's search text holds them all, read through
    PostgreSQL's trigram index)."""
    query = select(User).where(User.tenant_id == tenant_id)
    for word in query_words(search or ""):
        query = query.where(User.search_text.like(f"% {_escape_like(word)}%", escape="\\"))
    return query


@dataclass(frozen=True, slots=True)
class UsersPage:
    users: list[User]
    # Up to the cap; `capped` when there are more.
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
    COUNT_CAP, or SEARCH_COUNT_CAP for a search."""
    query = _filtered(tenant_id, search)
    searching = bool(query_words(search or ""))
    cap = SEARCH_COUNT_CAP if searching else COUNT_CAP
    counted = query.with_only_columns(User.id).limit(cap + 1).subquery()
    total = await session.scalar(select(func.count()).select_from(counted)) or 0
    users_of: Any = User
    if searching:
        # A search's agents are found first (through the trigram index), then the page's are
        # picked in order (a top-N sort): read along the order's index instead, a common name's
        # agents may lie far from its start (Nguyễn after every Bùi, Đặng, Hoàng, Lê...), a
        # walk over most of the tenant. OFFSET 0 keeps PostgreSQL from merging the two.
        users_of = aliased(User, query.offset(0).subquery("matches"))
        query = select(users_of)
    key = _ORDER[sort_column(sort)].key
    column, user_key = getattr(users_of, key), users_of.id
    descending = sort.startswith("-")
    if after is not None:
        value, user_id = after
        if descending:
            query = query.where(or_(column < value, and_(column == value, user_key < user_id)))
        else:
            query = query.where(or_(column > value, and_(column == value, user_key > user_id)))
    order = (column.desc(), user_key.desc()) if descending else (column.asc(), user_key.asc())
    users = list(await session.scalars(query.order_by(*order).limit(limit).offset(offset)))
    last = None
    if len(users) == limit:
        final = users[-1]
        last = (getattr(final, key), final.id)
    return UsersPage(users, min(total, cap), total > cap, last)

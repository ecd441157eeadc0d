"""The Users table's query: a tenant's users, searched by the words of their name, email,
extensions or device names, sorted and paged by offset or read on by keyset from where a page
ended, in every order."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

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

# A search word's first characters are what PostgreSQL's trigram index is asked for; the rest of
# a longer word (an e-mail's domain, which half a tenant shares) is checked on the rows those
# find. Each character more is one more trigram whose agents the index reads and intersects: on
# 100,000 agents (bench.scale), every trigram of an e-mail cost about 25 ms, those of its first
# twelve characters 3 ms, and they found the same agents.
INDEXED_CHARACTERS = 12
# A search whose matches are too many to count (SEARCH_COUNT_CAP) first walks the order's
# index from where the page starts, keeping the agents that match, over this many agents at
# most: a word a third of the tenant shares fills a page of 50 within about 160 of them, where
# the trigram index would read all of its 30,000 agents to pick the first 50. Past this many
# (a common word whose agents lie together far into the order: a family name in the order of
# full names), the page is picked from the trigram index's matches after all.
WALKED_ROWS = 1_000


class _contains(FunctionElement[bool]):
    """`text` contains `part`, as a plain substring (no LIKE wildcards to escape)."""

    type = Boolean()
    inherit_cache = True


@compiles(_contains)
def _contains_sqlite(element: _contains, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)}) > 0"


@compiles(_contains, "postgresql")
def _contains_postgresql(element: _contains, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)}) > 0"


# Scans that read a table from its start, or along an index, are not planned while off.
_PLANS = text(
    "SELECT set_config('enable_seqscan', :allowed, true), "
    "set_config('enable_indexscan', :allowed, true)"
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matching(search_text: Any, words: list[str]) -> list[ColumnElement[bool]]:
    """Each word starts a word of the user's search text (its words, each after a space: the
    words of the name and email, of the devices' names, and the extensions)."""
    conditions: list[ColumnElement[bool]] = []
    for word in words:
        indexed = _escape_like(word[:INDEXED_CHARACTERS])
        conditions.append(search_text.like(f"% {indexed}%", escape="\\"))
        if len(word) > INDEXED_CHARACTERS:
            conditions.append(_contains(search_text, f" {word}"))
    return conditions


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


class _Order:
    """An order of the Users table over some selectable of users: its column, then id."""

    def __init__(self, sort: UserSort, users: Any) -> None:
        self.key = _ORDER[sort_column(sort)].key
        self.column, self.id = getattr(users, self.key), users.id
        self.descending = sort.startswith("-")

    def by(self) -> tuple[Any, Any]:
        if self.descending:
            return self.column.desc(), self.id.desc()
        return self.column.asc(), self.id.asc()

    def after(self, place: Position) -> ColumnElement[bool]:
        """Past `place`: the rows a cursor from it reads."""
        value, user_id = place
        if self.descending:
            return or_(self.column < value, and_(self.column == value, self.id < user_id))
        return or_(self.column > value, and_(self.column == value, self.id > user_id))


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
    words = query_words(search or "")
    cap = SEARCH_COUNT_CAP if words else COUNT_CAP
    tenants = User.tenant_id == tenant_id
    counted = select(User.id).where(tenants, *_matching(User.search_text, words)).limit(cap + 1)
    total = await session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    order = _Order(sort, User)
    if not words:
        query = select(User).where(tenants)
        if after is not None:
            query = query.where(order.after(after))
        users = list(await session.scalars(query.order_by(*order.by()).limit(limit).offset(offset)))
    else:
        found = None
        if total > cap and offset + limit <= WALKED_ROWS:
            found = await _walk(session, tenants, words, sort, limit, offset, after)
        if found is None:
            found = await _from_matches(session, tenants, words, sort, limit, offset, after)
        users = found
    last = None
    if len(users) == limit:
        final = users[-1]
        last = (getattr(final, order.key), final.id)
    return UsersPage(users, min(total, cap), total > cap, last)


async def _walk(
    session: AsyncSession,
    tenants: ColumnElement[bool],
    words: list[str],
    sort: UserSort,
    limit: int,
    offset: int,
    after: Position | None,
) -> list[User] | None:
    """The page read along the order's index from where it starts, over WALKED_ROWS agents at
    most; None when they do not fill it."""
    order = _Order(sort, User)
    rows = select(User).where(tenants)
    if after is not None:
        rows = rows.where(order.after(after))
    ahead = aliased(User, rows.order_by(*order.by()).limit(WALKED_ROWS).subquery("ahead"))
    query = (
        select(ahead)
        .where(*_matching(ahead.search_text, words))
        .order_by(*_Order(sort, ahead).by())
        .limit(limit)
        .offset(offset)
    )
    users = list(await session.scalars(query))
    return users if len(users) == limit else None


async def _from_matches(
    session: AsyncSession,
    tenants: ColumnElement[bool],
    words: list[str],
    sort: UserSort,
    limit: int,
    offset: int,
    after: Position | None,
) -> list[User]:
    """The page picked from every agent the search matches, found through the trigram index:
    their ids and places first (a top-N sort of two columns), then the page's users."""
    order = _Order(sort, User)
    found = select(User.id, order.column).where(tenants, *_matching(User.search_text, words))
    if after is not None:
        found = found.where(order.after(after))
    # OFFSET 0 keeps PostgreSQL from reading the order's index instead, filtering as it goes: a
    # common word's agents may lie far from its start (Nguyễn after every Bùi, Đặng, Hoàng,
    # Lê...), a walk over most of the tenant.
    matches = found.offset(0).subquery("matches")
    page = select(matches.c.id).order_by(*_Order(sort, matches.c).by()).limit(limit).offset(offset)
    query = select(User).where(User.id.in_(page)).order_by(*order.by())
    if session.get_bind().dialect.name != "postgresql":
        return list(await session.scalars(query))
    # Nor by reading the whole table or the whole tenant: for a word of a third of the tenant
    # PostgreSQL rates a scan of every agent about as cheap as the trigram index, where it takes
    # three times as long (a LIKE on every agent's search text, where the index leaves only its
    # matches to check). Until the transaction ends or the page is read.
    await session.execute(_PLANS, {"allowed": "off"})
    users = list(await session.scalars(query))
    await session.execute(_PLANS, {"allowed": "on"})
    return users

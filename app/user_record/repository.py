"""The queries of the user_account table: a user with its tenant (locked for a change), and the
import's and export's reads and writes of many users at once."""

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, column, func, literal, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.sql import insert_many
from app.tenants.models import Tenant
from app.user_record.models import User

_USERS = cast(Table, User.__table__)
# The rows that refer to a user and lend it the words a search finds it by (their models sit
# above the user record): a device's name words, an extension's number.
_DEVICE_WORDS = table("device", column("user_id"), column("search_key"))
_EXTENSION_NUMBERS = table("extension", column("user_id"), column("number"))
_REFRESHED_AT_ONCE = 500


def search_text(search_key: str, device_words: list[str], numbers: list[str]) -> str:
    """A user's search text as `refresh_search_text` makes it, for a user written with its
    devices and extensions at once: its own words, its devices' words, then a word for each
    extension number."""
    return search_key + "".join(device_words) + "".join(f" {number}" for number in numbers)


async def refresh_search_text(session: AsyncSession, user_ids: Collection[uuid.UUID]) -> None:
    """Sets these users' search text anew from its sources: the words of their name and email,
    of their devices' names, and their extensions' numbers. Whatever changes one of them
    calls it once the change is flushed."""
    devices = (
        select(func.coalesce(func.aggregate_strings(_DEVICE_WORDS.c.search_key, ""), ""))
        .where(_DEVICE_WORDS.c.user_id == _USERS.c.id)
        .scalar_subquery()
    )
    numbers = (
        select(
            func.coalesce(
                func.aggregate_strings(literal(" ") + _EXTENSION_NUMBERS.c.number, ""), ""
            )
        )
        .where(_EXTENSION_NUMBERS.c.user_id == _USERS.c.id)
        .scalar_subquery()
    )
    ids = list(dict.fromkeys(user_ids))
    for start in range(0, len(ids), _REFRESHED_AT_ONCE):
        await session.execute(
            update(_USERS)
            .where(_USERS.c.id.in_(ids[start : start + _REFRESHED_AT_ONCE]))
            # Not a change of the user: its updated_at stays as it is.
            .values(
                search_text=_USERS.c.search_key + devices + numbers,
                updated_at=_USERS.c.updated_at,
            ),
            execution_options={"synchronize_session": False},
        )


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


class StoredUser(NamedTuple):
    """A user as the import and the export read it: its shown fields, without the ORM."""

    id: uuid.UUID
    display_name: str
    email: str | None
    external_ref: str | None
    enabled: bool
    outbound_allowed: bool
    auto_answer: bool
    limit_minutes: int | None
    quota_version: int


_STORED_COLUMNS = (
    User.id,
    User.display_name,
    User.email,
    User.external_ref,
    User.enabled,
    User.outbound_allowed,
    User.auto_answer,
    User.limit_minutes,
    User.quota_version,
)


async def users_by_ref(
    session: AsyncSession, *, tenant_id: uuid.UUID, refs: Collection[str], for_update: bool
) -> dict[str, StoredUser]:
    """The tenant's users with these external references; locked until the transaction ends
    when `for_update` (an import changes them from what it read)."""
    if not refs:
        return {}
    query = select(*_STORED_COLUMNS).where(User.tenant_id == tenant_id, User.external_ref.in_(refs))
    if for_update:
        query = query.with_for_update()
    rows = await session.execute(query)
    return {row.external_ref: StoredUser(*row) for row in rows}


async def users_page(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    with_ref: bool,
    after: str | uuid.UUID | None,
    limit: int,
) -> list[StoredUser]:
    """A page of the tenant's users as the export reads them: those with an external reference
    by it (in byte order on both backends), or (`with_ref` false) those without one by id;
    `after` is where the page before ended."""
    query = select(*_STORED_COLUMNS).where(User.tenant_id == tenant_id)
    if with_ref:
        query = query.where(User.external_ref.is_not(None)).order_by(User.external_ref)
        if after is not None:
            query = query.where(User.external_ref > after)
    else:
        query = query.where(User.external_ref.is_(None)).order_by(User.id)
        if after is not None:
            query = query.where(User.id > after)
    rows = await session.execute(query.limit(limit))
    return [StoredUser(*row) for row in rows]


async def insert_users(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New users' rows (each made by `service.new_user`), as multi-row INSERTs."""
    await insert_many(session, _USERS, rows)


async def update_users(
    session: AsyncSession, *, columns: Collection[str], rows: list[dict[str, Any]], at: datetime
) -> None:
    """Sets these columns of many users (each row: `user_id` and a value per column), raising
    each one's version, in one statement run for all of them."""
    if not rows:
        return
    statement = (
        update(_USERS)
        .where(_USERS.c.id == bindparam("user_id"))
        .values(
            {
                **{column: bindparam(column, type_=_USERS.c[column].type) for column in columns},
                "version": _USERS.c.version + 1,
                "updated_at": at,
            }
        )
    )
    await session.execute(statement, rows)

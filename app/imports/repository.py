"""The import's queries: what a batch of rows meets in the database (in a few statements per
batch, never one per row), its writes as statements of many rows, the export's pages, and the
import jobs."""

import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.sql import insert_many
from app.devices.models import Device, DeviceKind
from app.extensions.models import Extension
from app.imports.models import ImportJob
from app.users.models import User

_USERS = cast(Table, User.__table__)
_DEVICES = cast(Table, Device.__table__)
_EXTENSIONS = cast(Table, Extension.__table__)


class StoredUser(NamedTuple):
    id: uuid.UUID
    display_name: str
    email: str | None
    external_ref: str | None
    enabled: bool
    outbound_allowed: bool
    auto_answer: bool
    limit_minutes: int | None


class StoredDevice(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    name_key: str
    kind: DeviceKind
    enabled: bool


class StoredExtension(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    number: str


_USER_COLUMNS = (
    User.id,
    User.display_name,
    User.email,
    User.external_ref,
    User.enabled,
    User.outbound_allowed,
    User.auto_answer,
    User.limit_minutes,
)
_DEVICE_COLUMNS = (
    Device.id,
    Device.user_id,
    Device.name,
    Device.name_key,
    Device.kind,
    Device.enabled,
)


@asynccontextmanager
async def lookups_planned_for_their_values(session: AsyncSession) -> AsyncIterator[None]:
    """On PostgreSQL, the statements run inside are planned for their own values. A prepared
    statement's generic plan (from its sixth run on) cannot hash an `IN` list of hundreds of
    parameters and compares each row with every one of them: a batch's lookups took 30 times
    longer. The writes after them keep the generic plans (planning each row of an INSERT
    again costs more than it saves)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    yield
    if postgres:
        await session.execute(text("SET LOCAL plan_cache_mode = auto"))


async def users_by_ref(
    session: AsyncSession, *, tenant_id: uuid.UUID, refs: Collection[str], for_update: bool
) -> dict[str, StoredUser]:
    """The tenant's users with these external references; locked until the transaction ends
    when `for_update` (an import changes them from what it read)."""
    if not refs:
        return {}
    query = select(*_USER_COLUMNS).where(User.tenant_id == tenant_id, User.external_ref.in_(refs))
    if for_update:
        query = query.with_for_update()
    rows = await session.execute(query)
    return {row.external_ref: StoredUser(*row) for row in rows}


async def devices_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: Collection[uuid.UUID]
) -> list[StoredDevice]:
    if not user_ids:
        return []
    rows = await session.execute(
        select(*_DEVICE_COLUMNS).where(Device.tenant_id == tenant_id, Device.user_id.in_(user_ids))
    )
    return [StoredDevice(*row) for row in rows]


async def extensions_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: Collection[uuid.UUID]
) -> list[StoredExtension]:
    if not user_ids:
        return []
    rows = await session.execute(
        select(Extension.id, Extension.user_id, Extension.number).where(
            Extension.tenant_id == tenant_id, Extension.user_id.in_(user_ids)
        )
    )
    return [StoredExtension(*row) for row in rows]


async def extension_holders(
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


async def device_name_holders(
    session: AsyncSession, *, tenant_id: uuid.UUID, name_keys: Collection[str]
) -> dict[str, uuid.UUID]:
    """Whose device has each of these (lower-cased) names (the free ones are absent)."""
    if not name_keys:
        return {}
    rows = await session.execute(
        select(Device.name_key, Device.user_id).where(
            Device.tenant_id == tenant_id, Device.name_key.in_(name_keys)
        )
    )
    return {row.name_key: row.user_id for row in rows}


async def insert_users(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_many(session, _USERS, rows)


async def insert_devices(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_many(session, _DEVICES, rows)


async def insert_extensions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_many(session, _EXTENSIONS, rows)


async def update_users(
    session: AsyncSession, *, columns: Collection[str], rows: list[dict[str, Any]], at: datetime
) -> None:
    """Sets these columns of many users (each row: `user_id` and a value per column), raising
    each one's version."""
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


async def update_device_kinds(
    session: AsyncSession, *, rows: list[dict[str, Any]], at: datetime
) -> None:
    """Each row: `device_id` and its new `kind`."""
    if not rows:
        return
    statement = (
        update(_DEVICES)
        .where(_DEVICES.c.id == bindparam("device_id"))
        .values(
            kind=bindparam("kind", type_=_DEVICES.c.kind.type),
            version=_DEVICES.c.version + 1,
            updated_at=at,
        )
    )
    await session.execute(statement, rows)


async def delete_devices(session: AsyncSession, *, ids: Collection[uuid.UUID]) -> None:
    if ids:
        await session.execute(delete(_DEVICES).where(_DEVICES.c.id.in_(ids)))


async def delete_extensions(session: AsyncSession, *, ids: Collection[uuid.UUID]) -> None:
    if ids:
        await session.execute(delete(_EXTENSIONS).where(_EXTENSIONS.c.id.in_(ids)))


async def export_page(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    with_ref: bool,
    after: str | uuid.UUID | None,
    limit: int,
) -> list[StoredUser]:
    """A page of the export: users with an external reference by it (in byte order on both
    backends), or (`with_ref` false) those without one by id; `after` is where the page before
    ended."""
    query = select(*_USER_COLUMNS).where(User.tenant_id == tenant_id)
    if with_ref:
        ref: ColumnElement[Any] = _USERS.c.external_ref
        if session.get_bind().dialect.name == "postgresql":
            ref = _USERS.c.external_ref.collate("C")
        query = query.where(User.external_ref.is_not(None)).order_by(ref)
        if after is not None:
            query = query.where(ref > after)
    else:
        query = query.where(User.external_ref.is_(None)).order_by(User.id)
        if after is not None:
            query = query.where(User.id > after)
    rows = await session.execute(query.limit(limit))
    return [StoredUser(*row) for row in rows]


async def add_job(session: AsyncSession, job: ImportJob) -> None:
    session.add(job)
    await session.flush()


async def get_job(
    session: AsyncSession, *, tenant_id: uuid.UUID, job_id: uuid.UUID, for_update: bool = False
) -> ImportJob | None:
    query = select(ImportJob).where(ImportJob.id == job_id, ImportJob.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update()
    job: ImportJob | None = await session.scalar(query)
    return job


async def set_job_progress(
    session: AsyncSession, *, job_id: uuid.UUID, rows_done: int, at: datetime
) -> None:
    await session.execute(
        update(ImportJob).where(ImportJob.id == job_id).values(rows_done=rows_done, updated_at=at)
    )


async def finish_job(session: AsyncSession, *, job_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


async def delete_jobs_before(session: AsyncSession, *, before: datetime) -> int:
    result = await session.execute(delete(ImportJob).where(ImportJob.updated_at < before))
    return int(getattr(result, "rowcount", 0) or 0)

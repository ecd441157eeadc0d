import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    Uuid,
    and_,
    any_,
    bindparam,
    delete,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.sql import insert_many, one_of
from app.devices.models import Device, DeviceKind, PhoneModel, Registration, Transport
from app.tenants.models import Tenant
from app.user_record.models import User

_DEVICES = cast(Table, Device.__table__)


async def get_device_and_tenant(
    session: AsyncSession, *, tenant_id: uuid.UUID, device_id: uuid.UUID, for_update: bool = False
) -> tuple[Device, Tenant] | None:
    query = (
        select(Device, Tenant)
        .join(Tenant, Tenant.id == Device.tenant_id)
        .where(Device.id == device_id, Device.tenant_id == tenant_id)
    )
    if for_update:
        query = query.with_for_update(of=Device)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def list_user_devices(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> list[Device]:
    """The devices of these users, in the order they were added."""
    if not user_ids:
        return []
    rows = await session.scalars(
        select(Device)
        .where(Device.tenant_id == tenant_id, Device.user_id.in_(user_ids))
        .order_by(Device.created_at, Device.id)
    )
    return list(rows)


async def list_tenant_devices(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[Device]:
    return list(await session.scalars(select(Device).where(Device.tenant_id == tenant_id)))


async def device_names(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> list[str]:
    """The SIP user names of the tenant's devices (of one user's, when given)."""
    query = select(Device.name).where(Device.tenant_id == tenant_id)
    if user_id is not None:
        query = query.where(Device.user_id == user_id)
    return list(await session.scalars(query))


async def owner_name(session: AsyncSession, *, device: Device) -> str:
    name = await session.scalar(select(User.display_name).where(User.id == device.user_id))
    return name or ""


# Many devices at once: the import's and the export's reads and writes.


class StoredDevice(NamedTuple):
    """A device as the import and the export read it: its shown fields, without the ORM."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    name_key: str
    kind: DeviceKind
    enabled: bool
    mac: str | None
    model: PhoneModel | None


_STORED_DEVICE_COLUMNS = (
    Device.id,
    Device.user_id,
    Device.name,
    Device.name_key,
    Device.kind,
    Device.enabled,
    Device.mac,
    Device.model,
)


async def stored_devices_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: Collection[uuid.UUID]
) -> list[StoredDevice]:
    if not user_ids:
        return []
    rows = await session.execute(
        select(*_STORED_DEVICE_COLUMNS).where(
            Device.tenant_id == tenant_id, one_of(session, Device.user_id, user_ids)
        )
    )
    return [StoredDevice(*row) for row in rows]


async def device_names_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: Collection[uuid.UUID]
) -> list[tuple[uuid.UUID, str, DeviceKind]]:
    """Each device of these users as (user id, name, kind): what the export writes of it."""
    if not user_ids:
        return []
    rows = await session.execute(
        select(Device.user_id, Device.name, Device.kind).where(
            Device.tenant_id == tenant_id, one_of(session, Device.user_id, user_ids)
        )
    )
    return [(user_id, name, kind) for user_id, name, kind in rows]


async def name_holders(
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


async def insert_devices(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New devices' rows (each made by `service.new_device`), as multi-row INSERTs."""
    await insert_many(session, _DEVICES, rows)


async def update_device_kinds(
    session: AsyncSession, *, rows: list[dict[str, Any]], at: datetime
) -> None:
    """Each row: `device_id` and its new `kind`; one statement run for all of them, raising
    each device's version."""
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


# Registrations: a device's contacts at the SIP edges.

_REGISTRATIONS = cast(Table, Registration.__table__)


def _id_among(
    session: AsyncSession, column: Any, values: Collection[uuid.UUID]
) -> ColumnElement[bool]:
    """`column` is one of `values`: on PostgreSQL one array parameter, so that the statement's
    text (and its plan) is the same whatever the number of values."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(
            ColumnElement[bool], column == any_(bindparam(None, list(values), type_=ARRAY(Uuid)))
        )
    return cast(ColumnElement[bool], column.in_(list(values)))


class DeviceRef(NamedTuple):
    """A device as its registrations' events name it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    name: str


class ReportedDevice(NamedTuple):
    """The device a report names, by the domain and the lower-cased username it gave."""

    domain: str
    name_key: str
    device: DeviceRef


_REF_COLUMNS = (Device.id, Device.tenant_id, Device.user_id, Device.name)


def _locked(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    # NO KEY UPDATE: reports of one device wait for each other, while rows that merely refer to
    # the device (a call's authorization) are still written. SQLite's writers already take turns.
    return query.order_by(Device.id).with_for_update(of=Device, key_share=True)


async def lock_reported_devices(
    session: AsyncSession, *, accounts: Collection[tuple[str, str]], tenant_id: uuid.UUID | None
) -> list[ReportedDevice]:
    """The devices of these (domain, lower-cased username) pairs that the key may see (a
    platform key: `tenant_id` None), locked in the order of their ids until the transaction
    ends."""
    if not accounts:
        return []
    domains = [domain for domain, _ in accounts]
    name_keys = [name_key for _, name_key in accounts]
    if session.get_bind().dialect.name == "postgresql":
        asked = (
            func.unnest(
                bindparam("domains", domains, type_=ARRAY(String)),
                bindparam("name_keys", name_keys, type_=ARRAY(String)),
            )
            .table_valued("domain", "name_key")
            .render_derived(with_types=False)
        )
        query = (
            select(Tenant.sip_domain, Device.name_key, *_REF_COLUMNS)
            .select_from(asked)
            .join(Tenant, Tenant.sip_domain == asked.c.domain)
            .join(Device, and_(Device.tenant_id == Tenant.id, Device.name_key == asked.c.name_key))
        )
    else:
        query = (
            select(Tenant.sip_domain, Device.name_key, *_REF_COLUMNS)
            .select_from(Tenant)
            .join(Device, Device.tenant_id == Tenant.id)
            .where(tuple_(Tenant.sip_domain, Device.name_key).in_(list(accounts)))
        )
    if tenant_id is not None:
        query = query.where(Tenant.id == tenant_id)
    rows = await session.execute(_locked(query))
    return [ReportedDevice(row[0], row[1], DeviceRef._make(row[2:])) for row in rows]


def _scope(
    tenant_id: uuid.UUID, user_id: uuid.UUID | None, device_id: uuid.UUID | None
) -> list[ColumnElement[bool]]:
    where = [Device.tenant_id == tenant_id]
    if user_id is not None:
        where.append(Device.user_id == user_id)
    if device_id is not None:
        where.append(Device.id == device_id)
    return where


async def lock_devices(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    device_id: uuid.UUID | None = None,
) -> list[DeviceRef]:
    """The tenant's devices (a user's, or one), locked in the order of their ids."""
    rows = await session.execute(
        _locked(select(*_REF_COLUMNS).where(*_scope(tenant_id, user_id, device_id)))
    )
    return [DeviceRef._make(row) for row in rows]


async def lock_devices_by_id(
    session: AsyncSession, *, device_ids: Collection[uuid.UUID]
) -> list[DeviceRef]:
    rows = await session.execute(
        _locked(select(*_REF_COLUMNS).where(_id_among(session, Device.id, device_ids)))
    )
    return [DeviceRef._make(row) for row in rows]


class StoredRegistration(NamedTuple):
    id: uuid.UUID
    device_id: uuid.UUID
    edge: str
    contact: str
    transport: Transport | None
    source_address: str | None
    source_port: int | None
    user_agent: str | None
    expires_at: datetime
    live: bool
    seen_at: float
    registered_at: datetime


_STORED_COLUMNS = (
    Registration.id,
    Registration.device_id,
    Registration.edge,
    Registration.contact,
    Registration.transport,
    Registration.source_address,
    Registration.source_port,
    Registration.user_agent,
    Registration.expires_at,
    Registration.live,
    Registration.seen_at,
    Registration.registered_at,
)


async def registrations_of(
    session: AsyncSession, *, device_ids: Collection[uuid.UUID]
) -> list[StoredRegistration]:
    """Every registration row of these devices, at every edge."""
    if not device_ids:
        return []
    rows = await session.execute(
        select(*_STORED_COLUMNS).where(_id_among(session, Registration.device_id, device_ids))
    )
    return [StoredRegistration._make(row) for row in rows]


async def insert_registrations(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await insert_many(session, _REGISTRATIONS, rows)


async def update_registrations(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Each row: `row_id` and the columns it sets (every row the same ones), in one statement
    run for all of them."""
    if rows:
        await session.execute(
            update(_REGISTRATIONS).where(_REGISTRATIONS.c.id == bindparam("row_id")), rows
        )


async def end_live_registrations(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    device_id: uuid.UUID | None = None,
    seen_at: float,
    now: datetime,
) -> set[uuid.UUID]:
    """The live contacts of the tenant's devices (a user's, or one) are no longer live, as of
    `seen_at` (the edges' time); returns the devices that had one."""
    devices = select(Device.id).where(*_scope(tenant_id, user_id, device_id))
    result = await session.execute(
        update(_REGISTRATIONS)
        .where(
            _REGISTRATIONS.c.tenant_id == tenant_id,
            _REGISTRATIONS.c.device_id.in_(devices),
            _REGISTRATIONS.c.live.is_(True),
        )
        .values(live=False, seen_at=seen_at, updated_at=now)
        .returning(_REGISTRATIONS.c.device_id)
    )
    return set(result.scalars())


async def contact_counts(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    device_ids: Collection[uuid.UUID],
    now: datetime,
) -> dict[uuid.UUID, int]:
    """How many live, unexpired contacts each of these devices of the tenant (None: of any
    tenant, for a job) has; absent: none."""
    if not device_ids:
        return {}
    query = (
        select(Registration.device_id, func.count())
        .where(
            _id_among(session, Registration.device_id, device_ids),
            Registration.live.is_(True),
            Registration.expires_at > now,
        )
        .group_by(Registration.device_id)
    )
    if tenant_id is not None:
        query = query.where(Registration.tenant_id == tenant_id)
    rows = await session.execute(query)
    return {row[0]: row[1] for row in rows}


async def live_registrations(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
    now: datetime,
    limit: int,
    offset: int,
) -> tuple[list[Registration], int]:
    """A page of the device's live contacts, by edge and contact, and how many there are."""
    where = (
        Registration.tenant_id == tenant_id,
        Registration.device_id == device_id,
        Registration.live.is_(True),
        Registration.expires_at > now,
    )
    total = await session.scalar(select(func.count()).select_from(Registration).where(*where))
    rows = await session.scalars(
        select(Registration)
        .where(*where)
        .order_by(Registration.edge, Registration.contact)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total or 0


async def devices_with_expired_contacts(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[uuid.UUID]:
    """Devices with a contact still live past its expiry (up to `limit` of them)."""
    rows = await session.scalars(
        select(Registration.device_id)
        .where(Registration.live.is_(True), Registration.expires_at <= now)
        .group_by(Registration.device_id)
        .order_by(Registration.device_id)
        .limit(limit)
    )
    return list(rows)


async def end_expired_registrations(
    session: AsyncSession, *, device_ids: Collection[uuid.UUID], now: datetime
) -> set[uuid.UUID]:
    """These devices' contacts past their expiry are no longer live; returns the devices that
    had one."""
    result = await session.execute(
        update(_REGISTRATIONS)
        .where(
            _id_among(session, _REGISTRATIONS.c.device_id, device_ids),
            _REGISTRATIONS.c.live.is_(True),
            _REGISTRATIONS.c.expires_at <= now,
        )
        .values(live=False, updated_at=now)
        .returning(_REGISTRATIONS.c.device_id)
    )
    return set(result.scalars())


async def delete_registrations_before(
    session: AsyncSession, *, before: datetime, now: datetime
) -> int:
    """Forgets the contacts that are not live (or expired) and untouched since `before`."""
    result = await session.execute(
        delete(_REGISTRATIONS).where(
            or_(_REGISTRATIONS.c.live.is_(False), _REGISTRATIONS.c.expires_at <= now),
            _REGISTRATIONS.c.updated_at < before,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)

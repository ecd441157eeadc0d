"""Core queries for the call-control hot paths: each answer in as few round trips as possible."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, null, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.callcontrol.models import CallAuthorization, CallRecord
from app.database import AnyRow, dialect_insert
from app.devices.models import Device
from app.extensions.models import Extension
from app.quotas.models import MonthlyUsage
from app.tenants.models import Tenant
from app.users.models import User

_CALLER_COLUMNS = (
    Tenant.id.label("tenant_id"),
    Tenant.timezone,
    Tenant.emergency_numbers,
    Tenant.billing_increment_seconds,
    User.id.label("user_id"),
    User.enabled.label("user_enabled"),
    User.outbound_allowed,
    User.limit_minutes,
)


def _tenant_filter(domain: str, tenant_id: uuid.UUID | None) -> list[Any]:
    clauses = [Tenant.sip_domain == domain]
    if tenant_id is not None:
        clauses.append(Tenant.id == tenant_id)
    return clauses


async def find_sip_account(
    conn: AsyncConnection, *, domain: str, username: str, tenant_id: uuid.UUID | None
) -> AnyRow | None:
    query = (
        select(
            Tenant.id.label("tenant_id"),
            Tenant.sip_domain.label("realm"),
            Device.id.label("device_id"),
            Device.user_id,
            Device.name.label("username"),
            Device.enabled.label("device_enabled"),
            Device.ha1,
            Device.ha1_sha256,
            User.enabled.label("user_enabled"),
            User.auto_answer,
        )
        .join(Device, Device.tenant_id == Tenant.id)
        .join(User, User.id == Device.user_id)
        .where(*_tenant_filter(domain, tenant_id), Device.name_key == username.lower())
    )
    return (await conn.execute(query)).first()


async def find_extension_route(
    conn: AsyncConnection, *, domain: str, number: str, tenant_id: uuid.UUID | None
) -> list[AnyRow]:
    """One row per enabled device of the extension's holder (one row with no device if none)."""
    query = (
        select(
            Tenant.id.label("tenant_id"),
            User.id.label("user_id"),
            User.enabled.label("user_enabled"),
            User.auto_answer,
            Device.name.label("device_name"),
        )
        .join(Extension, Extension.tenant_id == Tenant.id)
        .join(User, User.id == Extension.user_id)
        .outerjoin(Device, and_(Device.user_id == User.id, Device.enabled.is_(True)))
        .where(*_tenant_filter(domain, tenant_id), Extension.number == number)
        .order_by(Device.created_at)
    )
    return list((await conn.execute(query)).all())


async def find_caller(
    conn: AsyncConnection,
    *,
    domain: str,
    username: str | None,
    user_id: uuid.UUID | None,
    tenant_id: uuid.UUID | None,
) -> AnyRow | None:
    """The caller with its tenant's call settings."""
    query: Select[*tuple[Any, ...]]
    if username is not None:
        query = (
            select(
                *_CALLER_COLUMNS,
                Device.id.label("device_id"),
                Device.enabled.label("device_enabled"),
            )
            .join(Device, Device.tenant_id == Tenant.id)
            .join(User, User.id == Device.user_id)
            .where(*_tenant_filter(domain, tenant_id), Device.name_key == username.lower())
        )
    else:
        query = (
            select(
                *_CALLER_COLUMNS,
                null().label("device_id"),
                true().label("device_enabled"),
            )
            .join(User, User.tenant_id == Tenant.id)
            .where(*_tenant_filter(domain, tenant_id), User.id == user_id)
        )
    return (await conn.execute(query)).first()


async def lock_user_limit(conn: AsyncConnection, *, user_id: uuid.UUID) -> int | None:
    """Locks the user's row until the transaction ends, so that one user's concurrent
    authorizations are decided one after the other; returns the limit as it now stands."""
    return await conn.scalar(select(User.limit_minutes).where(User.id == user_id).with_for_update())


_AUTHORIZATION_ANSWER = (
    CallAuthorization.call_id,
    CallAuthorization.allowed,
    CallAuthorization.reason,
    CallAuthorization.max_duration_seconds,
    CallAuthorization.emergency,
    CallAuthorization.user_id,
)


async def insert_authorization(conn: AsyncConnection, values: dict[str, Any]) -> AnyRow:
    """Stores the answer for a call id, or returns the one stored first for it."""
    table = CallAuthorization.__table__
    inserted = (
        await conn.execute(
            dialect_insert(conn, table)
            .values(id=uuid.uuid4(), **values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "call_id"])
            .returning(*_AUTHORIZATION_ANSWER)
        )
    ).first()
    if inserted is not None:
        return inserted
    return (
        await conn.execute(
            select(*_AUTHORIZATION_ANSWER).where(
                CallAuthorization.tenant_id == values["tenant_id"],
                CallAuthorization.call_id == values["call_id"],
            )
        )
    ).one()


_CALL_COLUMNS = (
    CallRecord.call_id,
    CallRecord.user_id,
    CallRecord.device_id,
    CallRecord.destination,
    CallRecord.started_at,
    CallRecord.duration_seconds,
    CallRecord.charged_seconds,
    CallRecord.period,
    CallRecord.emergency,
)


async def insert_call(conn: AsyncConnection, values: dict[str, Any]) -> tuple[AnyRow, bool]:
    """Records a call once; returns the stored row and whether this call inserted it."""
    table = CallRecord.__table__
    inserted = (
        await conn.execute(
            dialect_insert(conn, table)
            .values(id=uuid.uuid4(), **values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "call_id"])
            .returning(*_CALL_COLUMNS)
        )
    ).first()
    if inserted is not None:
        return inserted, True
    existing = (
        await conn.execute(
            select(*_CALL_COLUMNS).where(
                CallRecord.tenant_id == values["tenant_id"],
                CallRecord.call_id == values["call_id"],
            )
        )
    ).one()
    return existing, False


async def add_usage(
    conn: AsyncConnection, *, tenant_id: uuid.UUID, user_id: uuid.UUID, period: str, seconds: int
) -> None:
    """used_seconds += seconds, atomically, creating the month's row if needed."""
    statement = dialect_insert(conn, MonthlyUsage.__table__).values(
        tenant_id=tenant_id, user_id=user_id, period=period, used_seconds=seconds
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "period"],
            set_={
                "used_seconds": MonthlyUsage.__table__.c.used_seconds
                + statement.excluded.used_seconds
            },
        )
    )


async def release_hold(
    conn: AsyncConnection, *, tenant_id: uuid.UUID, call_id: str, now: datetime
) -> None:
    await conn.execute(
        update(CallAuthorization)
        .where(
            CallAuthorization.tenant_id == tenant_id,
            CallAuthorization.call_id == call_id,
            CallAuthorization.released_at.is_(None),
        )
        .values(released_at=now)
    )


async def user_in_tenant(
    conn: AsyncConnection, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    found = await conn.scalar(
        select(User.id).where(User.id == user_id, User.tenant_id == tenant_id)
    )
    return found is not None


async def list_calls(
    conn: AsyncConnection, *, tenant_id: uuid.UUID, user_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[AnyRow], int]:
    where = (CallRecord.tenant_id == tenant_id, CallRecord.user_id == user_id)
    total = await conn.scalar(select(func.count()).select_from(CallRecord).where(*where))
    rows = await conn.execute(
        select(*_CALL_COLUMNS)
        .where(*where)
        .order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total or 0

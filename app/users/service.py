"""Agents: their details, switches, and the Users table of the product."""

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import PasswordCipher
from app.devices.models import DeviceKind
from app.devices.schemas import DeviceSummary
from app.devices.service import add_device, default_device_name
from app.quotas.periods import now_utc
from app.quotas.service import used_minutes, used_seconds_by_user
from app.tenants.models import Tenant
from app.users import repository
from app.users.exceptions import ExternalRefTaken, UserNotFound
from app.users.models import User
from app.users.repository import UserSort
from app.users.schemas import (
    MinutesSummary,
    Toggles,
    TogglesUpdate,
    UserCreate,
    UserOut,
    UserUpdate,
)


async def _present(
    session: AsyncSession, *, tenant_id: uuid.UUID, users: list[User]
) -> list[UserOut]:
    """Users with devices and extensions loaded, as the Users table shows them."""
    tenant = await session.get_one(Tenant, tenant_id)
    period, used = await used_seconds_by_user(
        session, tenant=tenant, user_ids=[u.id for u in users], at=now_utc()
    )
    return [
        UserOut(
            id=user.id,
            display_name=user.display_name,
            email=user.email,
            external_ref=user.external_ref,
            enabled=user.enabled,
            outbound_allowed=user.outbound_allowed,
            auto_answer=user.auto_answer,
            limit_minutes=user.limit_minutes,
            devices=[DeviceSummary.model_validate(d) for d in user.devices],
            extensions=[e.number for e in user.extensions],
            minutes=MinutesSummary(
                period=period,
                used_minutes=used_minutes(used.get(user.id, 0)),
                limit_minutes=user.limit_minutes,
            ),
            created_at=user.created_at,
            updated_at=user.updated_at,
        )
        for user in users
    ]


async def _flush(session: AsyncSession, external_ref: str | None) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise ExternalRefTaken(
            f"External reference {external_ref} belongs to another user."
        ) from None


async def get_user(session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID) -> UserOut:
    user = await repository.get_user_with_accounts(session, tenant_id=tenant_id, user_id=user_id)
    if user is None:
        raise UserNotFound(f"No user {user_id}.")
    return (await _present(session, tenant_id=tenant_id, users=[user]))[0]


async def create_user(
    session: AsyncSession, cipher: PasswordCipher, *, tenant_id: uuid.UUID, data: UserCreate
) -> UserOut:
    """A new agent, with the one SIP account every agent gets by default."""
    tenant = await session.get_one(Tenant, tenant_id)
    user = User(tenant_id=tenant_id, **data.model_dump())
    session.add(user)
    await _flush(session, data.external_ref)
    await add_device(
        session,
        cipher,
        tenant=tenant,
        user_id=user.id,
        name=default_device_name(data.display_name),
        kind=DeviceKind.web,
        password=None,
    )
    return await get_user(session, tenant_id=tenant_id, user_id=user.id)


async def list_users(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    search: str | None,
    sort: UserSort,
    limit: int,
    offset: int,
) -> tuple[list[UserOut], int]:
    users, total = await repository.list_users(
        session, tenant_id=tenant_id, search=search, sort=sort, limit=limit, offset=offset
    )
    return await _present(session, tenant_id=tenant_id, users=users), total


async def update_user(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, data: UserUpdate
) -> UserOut:
    user = await repository.require_user(session, tenant_id=tenant_id, user_id=user_id)
    for field, value in data.changes().items():
        setattr(user, field, value)
    await _flush(session, user.external_ref)
    return await get_user(session, tenant_id=tenant_id, user_id=user_id)


async def delete_user(session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Deletes the user with its devices and extensions (the database cascades)."""
    user = await repository.require_user(session, tenant_id=tenant_id, user_id=user_id)
    await session.delete(user)
    await session.flush()


async def get_toggles(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> Toggles:
    user = await repository.require_user(session, tenant_id=tenant_id, user_id=user_id)
    return Toggles(outbound_allowed=user.outbound_allowed, auto_answer=user.auto_answer)


async def update_toggles(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, data: TogglesUpdate
) -> Toggles:
    user = await repository.require_user(session, tenant_id=tenant_id, user_id=user_id)
    for field, value in data.changes().items():
        setattr(user, field, value)
    await session.flush()
    return Toggles(outbound_allowed=user.outbound_allowed, auto_answer=user.auto_answer)

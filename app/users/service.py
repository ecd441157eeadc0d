"""Agents: their details and their two switches."""

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.conflicts import flush_or_conflict
from app.tenants.models import Tenant
from app.users import repository
from app.users.exceptions import ExternalRefTaken, UserNotFound
from app.users.models import User
from app.users.schemas import Toggles, TogglesUpdate, UserCreate, UserUpdate


@dataclass(frozen=True, slots=True)
class TenantUser:
    """A user, and the tenant it belongs to (whose domain, calendar and rules apply to it)."""

    user: User
    tenant: Tenant


async def require_user(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> TenantUser:
    """The tenant's user; UserNotFound otherwise (another tenant's user is not found either)."""
    found = await repository.get_user_and_tenant(session, tenant_id=tenant_id, user_id=user_id)
    if found is None:
        raise UserNotFound(f"No user {user_id}.")
    return TenantUser(user=found[0], tenant=found[1])


async def flush_user(session: AsyncSession, user: User) -> None:
    await flush_or_conflict(
        session,
        {
            "uq_user_account_tenant_id_external_ref": ExternalRefTaken(
                f"External reference {user.external_ref} belongs to another user."
            )
        },
    )


async def add_user(session: AsyncSession, *, tenant_id: uuid.UUID, data: UserCreate) -> User:
    user = User(tenant_id=tenant_id, **data.model_dump())
    session.add(user)
    await flush_user(session, user)
    return user


async def update_user(session: AsyncSession, *, user: User, data: UserUpdate) -> User:
    data.apply_to(user)
    await flush_user(session, user)
    return user


async def delete_user(session: AsyncSession, *, user: User) -> None:
    """Deletes the user; the database deletes their devices, extensions and usage with them."""
    await session.delete(user)
    await session.flush()


def toggles(user: User) -> Toggles:
    return Toggles(outbound_allowed=user.outbound_allowed, auto_answer=user.auto_answer)


async def update_toggles(session: AsyncSession, *, user: User, data: TogglesUpdate) -> Toggles:
    data.apply_to(user)
    await session.flush()
    return toggles(user)


async def set_limit(session: AsyncSession, *, user: User, limit_minutes: int | None) -> None:
    user.limit_minutes = limit_minutes
    await session.flush()

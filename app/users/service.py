"""Agents: their details and their two switches."""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.conflicts import flush_or_conflict
from app.outbox import record as outbox
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
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, for_update: bool = False
) -> TenantUser:
    """The tenant's user; UserNotFound otherwise (another tenant's user is not found either).
    `for_update`: locked until the transaction ends, for a change based on what is read."""
    found = await repository.get_user_and_tenant(
        session, tenant_id=tenant_id, user_id=user_id, for_update=for_update
    )
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


SHOWN = (
    "display_name",
    "email",
    "external_ref",
    "enabled",
    "outbound_allowed",
    "auto_answer",
    "limit_minutes",
)


def user_change(
    type: str,
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> outbox.Change:
    """The event and audit entry of a change to a user, however it was made."""
    return outbox.Change(
        type=type,
        tenant_id=tenant_id,
        resource_type="user",
        resource_id=user_id,
        user_id=user_id,
        data=data,
        before=before,
        after=after,
    )


def user_created(
    *, tenant_id: uuid.UUID, user_id: uuid.UUID, shown: dict[str, Any]
) -> outbox.Change:
    """A new user's event: its SHOWN fields, as JSON holds them."""
    return user_change(
        "user.created", tenant_id=tenant_id, user_id=user_id, data=shown, after=shown
    )


async def _record(
    session: AsyncSession,
    user: User,
    type: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    await outbox.record_change(
        session,
        user_change(type, tenant_id=user.tenant_id, user_id=user.id, before=before, after=after),
    )


async def _changed(session: AsyncSession, user: User, type: str, change: Any) -> None:
    """Applies `change(user)`, flushes, and records what changed (nothing changed: nothing)."""
    before = outbox.snapshot(user, SHOWN)
    change(user)
    await flush_user(session, user)
    old, new = outbox.changes(before, outbox.snapshot(user, SHOWN))
    await _record(session, user, type, before=old, after=new)


async def add_user(session: AsyncSession, *, tenant_id: uuid.UUID, data: UserCreate) -> User:
    user = User(tenant_id=tenant_id, **data.model_dump())
    session.add(user)
    await flush_user(session, user)
    created = user_created(tenant_id=tenant_id, user_id=user.id, shown=outbox.snapshot(user, SHOWN))
    await outbox.record_change(session, created)
    return user


async def update_user(session: AsyncSession, *, user: User, data: UserUpdate) -> User:
    await _changed(session, user, "user.updated", data.apply_to)
    return user


async def delete_user(session: AsyncSession, *, user: User) -> None:
    """Deletes the user; the database deletes their devices, extensions and usage with them."""
    await _record(session, user, "user.deleted", before=outbox.snapshot(user, SHOWN))
    await session.delete(user)
    await session.flush()


def toggles(user: User) -> Toggles:
    return Toggles(outbound_allowed=user.outbound_allowed, auto_answer=user.auto_answer)


async def update_toggles(session: AsyncSession, *, user: User, data: TogglesUpdate) -> Toggles:
    await _changed(session, user, "user.updated", data.apply_to)
    return toggles(user)


async def set_limit(session: AsyncSession, *, user: User, limit_minutes: int | None) -> None:
    def change(target: User) -> None:
        target.limit_minutes = limit_minutes

    await _changed(session, user, "quota.updated", change)

"""The user record's rules: a user loaded with its tenant, and the one way each change of a
user is made and recorded, whether a request makes it (one user) or the import (many)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.conflicts import flush_or_conflict
from app.errors.types import AppError
from app.names import name_columns
from app.outbox import record as outbox
from app.schemas import PatchModel
from app.tenants.models import Tenant
from app.user_record import repository
from app.user_record.exceptions import ExternalRefTaken, UserNameTaken, UserNotFound
from app.user_record.models import User
from app.user_record.schemas import UserCreate


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
        raise UserNotFound(user_id=str(user_id))
    return TenantUser(user=found[0], tenant=found[1])


def conflicts(user: User) -> dict[str, AppError]:
    """The errors a flush of the user answers when a unique constraint says no."""
    return {
        "uq_user_account_tenant_id_external_ref": ExternalRefTaken(
            field="body.external_ref", external_ref=user.external_ref
        ),
        "uq_user_account_tenant_id_user_name": UserNameTaken(
            field="body.userName", user_name=user.user_name
        ),
    }


async def flush_user(session: AsyncSession, user: User) -> None:
    await flush_or_conflict(session, conflicts(user))


SHOWN = (
    "display_name",
    "email",
    "external_ref",
    "enabled",
    "outbound_allowed",
    "auto_answer",
    "limit_minutes",
)
# The agent's own outbound policy: changed by a request only (the import leaves it).
OUTBOUND_SHOWN = ("extra_classes", "removed_classes", "max_concurrent_calls", "outbound_suspended")


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


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user about to be stored: its row (every column) and the event that records it."""

    row: dict[str, Any]
    created: outbox.Change


def new_user(*, tenant_id: uuid.UUID, data: UserCreate, at: datetime) -> NewUser:
    """A new user's row and its event: the one place a user is made, by a single create and
    by the import alike."""
    user_id = uuid.uuid4()
    names = name_columns(data.display_name, data.email)
    row = {
        "id": user_id,
        "tenant_id": tenant_id,
        "enabled": True,
        **data.model_dump(),
        "extra_classes": [],
        "removed_classes": [],
        "max_concurrent_calls": None,
        "outbound_suspended": False,
        **names,
        # Its own words; its devices' and extensions' join them as they are added.
        "search_text": names["search_key"],
        "created_at": at,
        "updated_at": at,
    }
    # JSON's values as they are (text, booleans, a number).
    shown = {name: row[name] for name in SHOWN}
    created = user_change(
        "user.created", tenant_id=tenant_id, user_id=user_id, data=shown, after=shown
    )
    return NewUser(row=row, created=created)


def user_update(
    *,
    tenant_id: uuid.UUID,
    user_id: uuid.UUID,
    before: dict[str, Any],
    given: dict[str, Any],
    quota_version: int,
    type: str = "user.updated",
) -> tuple[dict[str, Any], outbox.Change]:
    """What a change of a user sets and its event, for a single change and for the import
    alike: the given fields whose value differs from `before` (the user's SHOWN fields as they
    are), with what a new name or email decides (the search words, the sort keys), and a new
    quota version when the limit changes (the user is at `quota_version`). Nothing to set: the
    event records nothing either."""
    old, new = outbox.changes(before, {**before, **given})
    values = dict(new)
    if "display_name" in new or "email" in new:
        after = {**before, **new}
        values.update(name_columns(after["display_name"], after["email"]))
    if "limit_minutes" in new:
        values["quota_version"] = quota_version + 1
    return values, user_change(type, tenant_id=tenant_id, user_id=user_id, before=old, after=new)


async def _change(session: AsyncSession, user: User, type: str, given: dict[str, Any]) -> None:
    """Sets what `given` changes, flushes, and records it (nothing changed: nothing)."""
    values, change = user_update(
        tenant_id=user.tenant_id,
        user_id=user.id,
        before=outbox.snapshot(user, SHOWN + OUTBOUND_SHOWN),
        given=given,
        quota_version=user.quota_version,
        type=type,
    )
    for field, value in values.items():
        setattr(user, field, value)
    await flush_user(session, user)
    if "search_key" in values:
        await repository.refresh_search_text(session, [user.id])
    await outbox.record_change(session, change)


async def update_user(session: AsyncSession, *, user: User, data: PatchModel) -> User:
    """Sets the fields a partial update gives (the user's details or switches)."""
    given = _outbound_given(user, data.changes())
    suspended = given.get("outbound_suspended")
    if suspended is not None and suspended != user.outbound_suspended:
        if suspended:
            user.outbound_suspended_at = utcnow()
        else:
            user.outbound_suspended_at, user.outbound_lifted_at = None, utcnow()
    await _change(session, user, "user.updated", given)
    return user


def _outbound_given(user: User, given: dict[str, Any]) -> dict[str, Any]:
    """A change's destination classes as stored (their names), a class added leaving the
    removed ones and the reverse."""
    extra, removed = given.get("extra_classes"), given.get("removed_classes")
    if extra is not None:
        given["extra_classes"] = [str(c) for c in extra]
        if removed is None:
            given["removed_classes"] = [c for c in user.removed_classes if c not in extra]
    if removed is not None:
        given["removed_classes"] = [str(c) for c in removed]
        if extra is None:
            given["extra_classes"] = [c for c in user.extra_classes if c not in removed]
    return given


async def set_limit(session: AsyncSession, *, user: User, limit_minutes: int | None) -> None:
    await _change(session, user, "quota.updated", {"limit_minutes": limit_minutes})


async def set_user_name(session: AsyncSession, *, user: User, user_name: str | None) -> None:
    """Gives the user the login name a SCIM directory knows them by (unique in the tenant)."""
    if user.user_name == user_name:
        return
    user.user_name = user_name
    await flush_user(session, user)


async def delete_user(session: AsyncSession, *, user: User) -> None:
    """Deletes the user; the database deletes their devices, extensions and usage with them."""
    await outbox.record_change(
        session,
        user_change(
            "user.deleted",
            tenant_id=user.tenant_id,
            user_id=user.id,
            before=outbox.snapshot(user, SHOWN),
        ),
    )
    await session.delete(user)
    await session.flush()

"""Internal extensions: short numbers agents call each other by, and hotline callers dial."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.conflicts import flush_or_conflict
from app.dialing import shadows_emergency
from app.errors import Code
from app.extensions import repository
from app.extensions.exceptions import ExtensionNotFound, ExtensionShadowsEmergency, ExtensionTaken
from app.extensions.models import Extension
from app.extensions.schemas import ExtensionHolder
from app.outbox import record as outbox
from app.tenants.models import Tenant
from app.user_record import repository as user_records


def refuse_emergency_shadow(
    number: str, emergency_numbers: list[str], *, field: str = "body.number"
) -> None:
    """ExtensionShadowsEmergency when dialling `number` could be taken for an emergency call."""
    if shadows_emergency(number, emergency_numbers):
        raise ExtensionShadowsEmergency(
            field, Code.extension_shadows_emergency, number=number, numbers=emergency_numbers
        )


@dataclass(frozen=True, slots=True)
class NewExtension:
    """An extension about to be stored: its row and the event that records it."""

    row: dict[str, Any]
    added: outbox.Change


def new_extension(
    *, tenant: Tenant, user_id: uuid.UUID, number: str, at: datetime, field: str = "body.number"
) -> NewExtension:
    """A new extension's row and its event: the one place an extension is made, by a single
    request and by the import alike."""
    refuse_emergency_shadow(number, tenant.emergency_numbers, field=field)
    row = {
        "id": uuid.uuid4(),
        "tenant_id": tenant.id,
        "user_id": user_id,
        "number": number,
        "created_at": at,
    }
    added = extension_change("extension.added", tenant_id=tenant.id, user_id=user_id, number=number)
    return NewExtension(row=row, added=added)


async def add_extension(
    session: AsyncSession, *, tenant: Tenant, user_id: uuid.UUID, number: str
) -> Extension:
    new = new_extension(tenant=tenant, user_id=user_id, number=number, at=utcnow())
    extension = Extension(**new.row)
    session.add(extension)
    await flush_or_conflict(
        session,
        {"uq_extension_tenant_id_number": ExtensionTaken(field="body.number", number=number)},
    )
    await user_records.refresh_search_text(session, [user_id])
    await outbox.record_change(session, new.added)
    return extension


async def list_extensions(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[Extension]:
    return await repository.list_user_extensions(session, tenant_id=tenant_id, user_ids=[user_id])


async def remove_extension(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, number: str
) -> None:
    if not await repository.delete_user_extension(
        session, tenant_id=tenant_id, user_id=user_id, number=number
    ):
        raise ExtensionNotFound(Code.extension_not_held, number=number)
    await user_records.refresh_search_text(session, [user_id])
    await _record(session, "extension.removed", tenant_id=tenant_id, user_id=user_id, number=number)


def extension_change(
    type: str, *, tenant_id: uuid.UUID, user_id: uuid.UUID, number: str
) -> outbox.Change:
    """The event and audit entry of an extension added to or removed from a user."""
    values = {"number": number, "user_id": str(user_id)}
    added = type.endswith("added")
    return outbox.Change(
        type=type,
        tenant_id=tenant_id,
        resource_type="extension",
        resource_id=number,
        user_id=user_id,
        data=values,
        before=None if added else values,
        after=values if added else None,
    )


async def _record(
    session: AsyncSession, type: str, *, tenant_id: uuid.UUID, user_id: uuid.UUID, number: str
) -> None:
    await outbox.record_change(
        session, extension_change(type, tenant_id=tenant_id, user_id=user_id, number=number)
    )


async def find_holder(
    session: AsyncSession, *, tenant_id: uuid.UUID, number: str
) -> ExtensionHolder:
    found = await repository.find_holder(session, tenant_id=tenant_id, number=number)
    if found is None:
        raise ExtensionNotFound(Code.extension_free, number=number)
    extension, display_name = found
    return ExtensionHolder(
        number=extension.number, user_id=extension.user_id, display_name=display_name
    )


async def available_numbers(
    session: AsyncSession, *, tenant: Tenant, digits: int, limit: int
) -> list[str]:
    """The lowest free numbers of that length, from 10…0 upwards (e.g. 100, 101, … for 3)."""
    taken = await repository.taken_numbers(session, tenant_id=tenant.id, digits=digits)
    free: list[str] = []
    for value in range(10 ** (digits - 1), 10**digits):
        number = str(value)
        if number in taken or shadows_emergency(number, tenant.emergency_numbers):
            continue
        free.append(number)
        if len(free) == limit:
            break
    return free


async def shadowed_extensions(
    session: AsyncSession, *, tenant_id: uuid.UUID, emergency_numbers: list[str]
) -> list[str]:
    """The tenant's extensions that these emergency numbers would be shadowed by."""
    return [
        number
        for number in await repository.tenant_extension_numbers(session, tenant_id=tenant_id)
        if shadows_emergency(number, emergency_numbers)
    ]

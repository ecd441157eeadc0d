"""Internal extensions: short numbers agents call each other by, and hotline callers dial."""

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.extensions import repository
from app.extensions.exceptions import ExtensionNotFound, ExtensionShadowsEmergency, ExtensionTaken
from app.extensions.models import Extension
from app.extensions.schemas import ExtensionHolder
from app.tenants.models import Tenant
from app.users.repository import require_user


def shadows_emergency(number: str, emergency_numbers: list[str]) -> bool:
    """True when dialling the extension could be mistaken for an emergency call or the reverse:
    the same number, or one that is a prefix of the other (phones dial as soon as a digit map
    matches)."""
    return any(number.startswith(e) or e.startswith(number) for e in emergency_numbers)


async def add_extension(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, number: str
) -> Extension:
    await require_user(session, tenant_id=tenant_id, user_id=user_id)
    tenant = await session.get_one(Tenant, tenant_id)
    if shadows_emergency(number, tenant.emergency_numbers):
        raise ExtensionShadowsEmergency(
            "body.number",
            f"{number} would shadow an emergency number ({', '.join(tenant.emergency_numbers)}).",
            type="extension_shadows_emergency",
        )
    extension = Extension(tenant_id=tenant_id, user_id=user_id, number=number)
    session.add(extension)
    try:
        await session.flush()
    except IntegrityError:
        raise ExtensionTaken(f"Extension {number} is already assigned.") from None
    return extension


async def list_extensions(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> list[Extension]:
    await require_user(session, tenant_id=tenant_id, user_id=user_id)
    return await repository.list_user_extensions(session, tenant_id=tenant_id, user_id=user_id)


async def remove_extension(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, number: str
) -> None:
    await require_user(session, tenant_id=tenant_id, user_id=user_id)
    if not await repository.delete_user_extension(
        session, tenant_id=tenant_id, user_id=user_id, number=number
    ):
        raise ExtensionNotFound(f"The user does not hold extension {number}.")


async def find_holder(
    session: AsyncSession, *, tenant_id: uuid.UUID, number: str
) -> ExtensionHolder:
    found = await repository.find_holder(session, tenant_id=tenant_id, number=number)
    if found is None:
        raise ExtensionNotFound(f"Extension {number} is free.")
    extension, display_name = found
    return ExtensionHolder(
        number=extension.number, user_id=extension.user_id, display_name=display_name
    )


async def available_numbers(
    session: AsyncSession, *, tenant_id: uuid.UUID, digits: int, limit: int
) -> list[str]:
    """The lowest free numbers of that length, from 10…0 upwards (e.g. 100, 101, … for 3)."""
    tenant = await session.get_one(Tenant, tenant_id)
    taken = await repository.taken_numbers(session, tenant_id=tenant_id, digits=digits)
    free: list[str] = []
    for value in range(10 ** (digits - 1), 10**digits):
        number = str(value)
        if number in taken or shadows_emergency(number, tenant.emergency_numbers):
            continue
        free.append(number)
        if len(free) == limit:
            break
    return free

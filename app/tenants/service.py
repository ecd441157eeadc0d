"""Tenants: the companies using the call center, each with its own SIP domain."""

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.crypto import PasswordCipher
from app.devices.service import rehash_tenant_devices
from app.extensions.repository import tenant_extension_numbers
from app.extensions.service import shadows_emergency
from app.tenants import repository
from app.tenants.exceptions import EmergencyNumberInUse, SipDomainTaken, TenantNotFound
from app.tenants.models import Tenant
from app.tenants.schemas import TenantCreate, TenantUpdate


async def _flush(session: AsyncSession, sip_domain: str | None) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise SipDomainTaken(f"SIP domain {sip_domain} belongs to another tenant.") from None


async def create_tenant(session: AsyncSession, *, data: TenantCreate) -> Tenant:
    tenant = Tenant(**data.model_dump())
    session.add(tenant)
    await _flush(session, data.sip_domain)
    return tenant


async def get_tenant(session: AsyncSession, *, tenant_id: uuid.UUID) -> Tenant:
    tenant = await repository.get_tenant(session, tenant_id=tenant_id)
    if tenant is None:
        raise TenantNotFound(f"No tenant {tenant_id}.")
    return tenant


async def list_tenants(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[Tenant], int]:
    return await repository.list_tenants(session, limit=limit, offset=offset)


async def _refuse_shadowed_extensions(
    session: AsyncSession, tenant_id: uuid.UUID, emergency_numbers: list[str]
) -> None:
    """An emergency number must never be shadowed by an extension that already exists."""
    shadowed = [
        number
        for number in await tenant_extension_numbers(session, tenant_id=tenant_id)
        if shadows_emergency(number, emergency_numbers)
    ]
    if shadowed:
        raise EmergencyNumberInUse(
            f"Extensions {', '.join(shadowed)} would shadow the new emergency numbers; "
            "remove them first."
        )


async def update_tenant(
    session: AsyncSession, cipher: PasswordCipher, *, tenant_id: uuid.UUID, data: TenantUpdate
) -> Tenant:
    tenant = await get_tenant(session, tenant_id=tenant_id)
    changes = data.changes()
    if "emergency_numbers" in changes:
        await _refuse_shadowed_extensions(session, tenant.id, changes["emergency_numbers"])
    realm_changed = "sip_domain" in changes and changes["sip_domain"] != tenant.sip_domain
    for field, value in changes.items():
        setattr(tenant, field, value)
    await _flush(session, tenant.sip_domain)
    if realm_changed:
        await rehash_tenant_devices(session, cipher, tenant_id=tenant.id, realm=tenant.sip_domain)
    return tenant


async def delete_tenant(session: AsyncSession, *, tenant_id: uuid.UUID) -> None:
    tenant = await get_tenant(session, tenant_id=tenant_id)
    await session.delete(tenant)
    await session.flush()

"""Tenants: the companies using the call center, each with its own SIP domain."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.conflicts import flush_or_conflict
from app.db.session import Database
from app.tenants import repository
from app.tenants.exceptions import SipDomainTaken, TenantNotFound
from app.tenants.models import Tenant
from app.tenants.schemas import TenantCreate


async def flush_tenant(session: AsyncSession, tenant: Tenant) -> None:
    await flush_or_conflict(
        session,
        {
            "uq_tenant_sip_domain": SipDomainTaken(
                f"SIP domain {tenant.sip_domain} belongs to another tenant."
            )
        },
    )


async def create_tenant(session: AsyncSession, *, data: TenantCreate) -> Tenant:
    tenant = Tenant(**data.model_dump())
    session.add(tenant)
    await flush_tenant(session, tenant)
    return tenant


async def get_tenant(session: AsyncSession, *, tenant_id: uuid.UUID) -> Tenant:
    tenant = await repository.get_tenant(session, tenant_id=tenant_id)
    if tenant is None:
        raise TenantNotFound(f"No tenant {tenant_id}.")
    return tenant


async def require_tenant_exists(db: Database, *, tenant_id: uuid.UUID) -> None:
    """TenantNotFound unless the tenant exists (one short read, outside any session)."""
    async with db.engine.connect() as conn:
        if not await repository.tenant_exists(conn, tenant_id=tenant_id):
            raise TenantNotFound(f"No tenant {tenant_id}.")


async def list_tenants(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[Tenant], int]:
    return await repository.list_tenants(session, limit=limit, offset=offset)


async def delete_tenant(session: AsyncSession, *, tenant: Tenant) -> None:
    await session.delete(tenant)
    await session.flush()

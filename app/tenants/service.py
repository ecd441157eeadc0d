"""Tenants: the companies using the call center, each with its own SIP domain."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.conflicts import flush_or_conflict
from app.db.session import Database
from app.outbox import record as outbox
from app.tenants import repository
from app.tenants.exceptions import SipDomainTaken, TenantNotFound
from app.tenants.models import Tenant
from app.tenants.schemas import OutboundPolicyUpdate, TenantCreate, TenantUpdate


async def flush_tenant(session: AsyncSession, tenant: Tenant) -> None:
    await flush_or_conflict(
        session,
        {
            "uq_tenant_sip_domain": SipDomainTaken(
                field="body.sip_domain", sip_domain=tenant.sip_domain
            )
        },
    )


SHOWN = ("name", "sip_domain", "timezone", "emergency_numbers", "billing_increment_seconds")


async def create_tenant(session: AsyncSession, *, data: TenantCreate) -> Tenant:
    tenant = Tenant(**data.model_dump())
    session.add(tenant)
    await flush_tenant(session, tenant)
    shown = outbox.snapshot(tenant, SHOWN)
    await outbox.record(
        session,
        type="tenant.created",
        tenant_id=tenant.id,
        resource_type="tenant",
        resource_id=tenant.id,
        data=shown,
        after=shown,
    )
    return tenant


async def update_tenant(session: AsyncSession, *, tenant: Tenant, data: TenantUpdate) -> None:
    """The tenant's own row and its `tenant.updated` event (with what changed); what the change
    means for its devices and extensions is app.tenancy's."""
    before = outbox.snapshot(tenant, SHOWN)
    data.apply_to(tenant)
    await flush_tenant(session, tenant)
    await _record_update(session, tenant, before, SHOWN)


async def _record_update(
    session: AsyncSession, tenant: Tenant, before: dict[str, Any], fields: tuple[str, ...]
) -> None:
    """`tenant.updated` with what of `fields` changed since `before`; nothing when nothing did."""
    old, new = outbox.changes(before, outbox.snapshot(tenant, fields))
    if not new:
        return
    await outbox.record(
        session,
        type="tenant.updated",
        tenant_id=tenant.id,
        resource_type="tenant",
        resource_id=tenant.id,
        before=old,
        after=new,
    )


POLICY_SHOWN = (
    "dial_plan",
    "outbound_classes",
    "max_concurrent_calls",
    "max_calls_per_minute",
    "max_contacts_web",
    "max_contacts_softphone",
    "max_contacts_ip_phone",
)


async def update_outbound_policy(
    session: AsyncSession, *, tenant: Tenant, data: OutboundPolicyUpdate
) -> None:
    """The tenant's dial plan, default destination classes and limits, with the
    `tenant.updated` event of what changed."""
    before = outbox.snapshot(tenant, POLICY_SHOWN)
    given = data.changes()
    for kind, limit in (given.pop("registration_limits", None) or {}).items():
        setattr(tenant, f"max_contacts_{kind}", limit)
    if "outbound_classes" in given:
        given["outbound_classes"] = [c.value for c in data.outbound_classes or []]
    if data.dial_plan is not None:
        given["dial_plan"] = data.dial_plan.model_dump(mode="json")
    for field, value in given.items():
        setattr(tenant, field, value)
    await session.flush()
    await _record_update(session, tenant, before, POLICY_SHOWN)


async def get_tenant(
    session: AsyncSession, *, tenant_id: uuid.UUID, for_update: bool = False
) -> Tenant:
    tenant = await repository.get_tenant(session, tenant_id=tenant_id, for_update=for_update)
    if tenant is None:
        raise TenantNotFound(tenant_id=str(tenant_id))
    return tenant


async def require_tenant_exists(db: Database, *, tenant_id: uuid.UUID) -> None:
    """TenantNotFound unless the tenant exists (one short read, outside any session)."""
    async with db.engine.connect() as conn:
        if not await repository.tenant_exists(conn, tenant_id=tenant_id):
            raise TenantNotFound(tenant_id=str(tenant_id))


async def list_tenants(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[Tenant], int]:
    return await repository.list_tenants(session, limit=limit, offset=offset)


async def delete_tenant(session: AsyncSession, *, tenant: Tenant) -> None:
    # A platform event: the tenant's own rows (its events and audit entries too) go with it.
    await outbox.record(
        session,
        type="tenant.deleted",
        tenant_id=None,
        resource_type="tenant",
        resource_id=tenant.id,
        data={"tenant_id": str(tenant.id), "sip_domain": tenant.sip_domain},
        before=outbox.snapshot(tenant, SHOWN),
    )
    await session.delete(tenant)
    await session.flush()

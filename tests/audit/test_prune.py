"""The audit trail is kept for ANTRING_AUDIT_RETENTION_DAYS, then forgotten, in every tenant."""

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from app.clock import utcnow
from app.db.session import Database
from app.jobs.registry import run_job
from app.outbox.models import AuditEntry
from tests.helpers.api import TenantKeys, create_user, db_rows


async def test_entries_older_than_the_retention_are_forgotten_in_every_tenant(
    client: httpx.AsyncClient, db: Database, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    old = await create_user(client, tenant.admin, display_name="Old")
    await create_user(client, other_tenant.admin, display_name="Theirs, old")
    kept = await create_user(client, tenant.admin, display_name="New")
    retention = timedelta(days=db.settings.audit_retention_days)
    async with db.session_scope() as session:
        await session.execute(
            update(AuditEntry)
            .where(AuditEntry.resource_id != kept["id"], AuditEntry.tenant_id.is_not(None))
            .values(occurred_at=utcnow() - retention - timedelta(minutes=1))
        )

    assert await run_job(db, "prune-audit-entries") > 0

    left = await db_rows(db, select(AuditEntry.tenant_id, AuditEntry.resource_id))
    assert (tenant.id, kept["id"]) in left
    assert all(resource_id != old["id"] for _, resource_id in left)
    assert all(tenant_id != other_tenant.id for tenant_id, _ in left)

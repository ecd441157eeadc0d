"""The tenant a platform admin's route acts on (`{tenant_id}`), locked, at its `If-Match`."""

import uuid
from typing import Annotated

from fastapi import Depends

from app.auth.deps import PlatformAdmin
from app.deps import IfMatch, SessionDep
from app.etags import require_match
from app.tenants import service as tenants
from app.tenants.models import Tenant
from app.tenants.schemas import TenantOut


async def _platform_tenant(
    tenant_id: uuid.UUID, session: SessionDep, _key: PlatformAdmin, if_match: IfMatch = None
) -> Tenant:
    tenant = await tenants.get_tenant(session, tenant_id=tenant_id, for_update=True)

    async def shown() -> TenantOut:
        return TenantOut.model_validate(tenant)

    await require_match(if_match, tenant.version, current=shown)
    return tenant


# The tenant of the route's `{tenant_id}`, for a platform admin key (`If-Match` as above).
PlatformTenant = Annotated[Tenant, Depends(_platform_tenant)]

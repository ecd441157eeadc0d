"""A tenant's outbound policy, which its admin keeps: the dial plan, the destination classes its
agents may call, and the limits on their calls and registrations."""

from fastapi import Response

from app.auth.deps import AdminAccess, ReadAccess
from app.deps import IfMatch, SessionDep
from app.errors import VERSIONED, Forbidden, InvalidInput, Stale, Unauthorized, responses
from app.etags import require_match, set_etag
from app.routing import api_router
from app.tenants import service as tenants
from app.tenants.exceptions import TenantNotFound
from app.tenants.schemas import OutboundPolicy, OutboundPolicyUpdate

router = api_router(
    prefix="/v1/outbound-policy",
    tags=["outbound policy"],
    responses=responses(Unauthorized, Forbidden, TenantNotFound),
)


@router.get("", response_model=OutboundPolicy, responses=responses(VERSIONED))
async def get_outbound_policy(
    session: SessionDep, scope: ReadAccess, response: Response
) -> OutboundPolicy:
    """Show the tenant's dial plan, default destination classes and limits."""
    tenant = await tenants.get_tenant(session, tenant_id=scope.tenant_id)
    set_etag(response, tenant.version)
    return OutboundPolicy.of(tenant)


@router.patch(
    "",
    response_model=OutboundPolicy,
    responses=responses(InvalidInput, Stale(OutboundPolicy), VERSIONED),
)
async def update_outbound_policy(
    body: OutboundPolicyUpdate,
    session: SessionDep,
    scope: AdminAccess,
    response: Response,
    if_match: IfMatch = None,
) -> OutboundPolicy:
    """Change the tenant's dial plan, default destination classes or limits."""
    tenant = await tenants.get_tenant(session, tenant_id=scope.tenant_id, for_update=True)

    async def shown() -> OutboundPolicy:
        return OutboundPolicy.of(tenant)

    await require_match(if_match, tenant.version, current=shown)
    await tenants.update_outbound_policy(session, tenant=tenant, data=body)
    set_etag(response, tenant.version)
    return OutboundPolicy.of(tenant)

import uuid

from fastapi import Response, status

from app.auth.deps import IdempotencyDep, PlatformAdmin, PlatformRead
from app.deps import CipherDep, SessionDep
from app.errors import (
    CREATED_VERSIONED,
    VERSIONED,
    Forbidden,
    InvalidInput,
    Stale,
    Unauthorized,
    responses,
)
from app.etags import set_etag
from app.idempotency.service import create_once
from app.pagination import Page, PageDep
from app.routing import api_router
from app.tenancy import service as tenancy
from app.tenancy.deps import PlatformTenant
from app.tenants import service
from app.tenants.exceptions import EmergencyNumberInUse, SipDomainTaken, TenantNotFound
from app.tenants.schemas import TenantCreate, TenantOut, TenantUpdate

router = api_router(
    prefix="/v1/tenants", tags=["tenants"], responses=responses(Unauthorized, Forbidden)
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TenantOut,
    responses=responses(SipDomainTaken, InvalidInput, CREATED_VERSIONED),
)
async def create_tenant(
    body: TenantCreate,
    session: SessionDep,
    cipher: CipherDep,
    _key: PlatformAdmin,
    once: IdempotencyDep,
) -> Response:
    """Create a tenant (a company using the call center)."""

    async def create() -> tuple[TenantOut, str]:
        tenant = TenantOut.model_validate(await service.create_tenant(session, data=body))
        return tenant, f"/v1/tenants/{tenant.id}"

    return await create_once(session, cipher, once=once, create=create)


@router.get("", response_model=Page[TenantOut])
async def list_tenants(session: SessionDep, page: PageDep, _key: PlatformRead) -> Page[TenantOut]:
    """List tenants."""
    tenants, total = await service.list_tenants(session, limit=page.limit, offset=page.offset)
    return Page.of([TenantOut.model_validate(t) for t in tenants], total, page)


@router.get(
    "/{tenant_id}", response_model=TenantOut, responses=responses(TenantNotFound, VERSIONED)
)
async def get_tenant(
    tenant_id: uuid.UUID, session: SessionDep, _key: PlatformRead, response: Response
) -> TenantOut:
    """Show a tenant."""
    tenant = await service.get_tenant(session, tenant_id=tenant_id)
    set_etag(response, tenant.version)
    return TenantOut.model_validate(tenant)


@router.patch(
    "/{tenant_id}",
    response_model=TenantOut,
    responses=responses(
        TenantNotFound, SipDomainTaken, EmergencyNumberInUse, Stale(TenantOut), VERSIONED
    ),
)
async def update_tenant(
    body: TenantUpdate,
    session: SessionDep,
    cipher: CipherDep,
    tenant: PlatformTenant,
    response: Response,
) -> TenantOut:
    """Change a tenant's settings."""
    updated = await tenancy.update_tenant(session, cipher, tenant=tenant, data=body)
    set_etag(response, updated.version)
    return TenantOut.model_validate(updated)


@router.delete(
    "/{tenant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(TenantNotFound, Stale(TenantOut)),
)
async def delete_tenant(session: SessionDep, tenant: PlatformTenant) -> None:
    """Delete a tenant with all its users, devices, extensions, usage and keys."""
    await tenancy.delete_tenant(session, tenant=tenant)

import uuid

from fastapi import status

from app.deps import CipherDep, PlatformAdmin, PlatformRead, SessionDep
from app.directory import service as directory
from app.errors import Forbidden, Unauthorized, responses
from app.pagination import Page, PageDep
from app.routing import api_router
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
    responses=responses(SipDomainTaken),
)
async def create_tenant(body: TenantCreate, session: SessionDep, _key: PlatformAdmin) -> TenantOut:
    """Create a tenant (a company using the call center)."""
    return TenantOut.model_validate(await service.create_tenant(session, data=body))


@router.get("", response_model=Page[TenantOut])
async def list_tenants(session: SessionDep, page: PageDep, _key: PlatformRead) -> Page[TenantOut]:
    """List tenants."""
    tenants, total = await service.list_tenants(session, limit=page.limit, offset=page.offset)
    return Page.of([TenantOut.model_validate(t) for t in tenants], total, page)


@router.get("/{tenant_id}", response_model=TenantOut, responses=responses(TenantNotFound))
async def get_tenant(tenant_id: uuid.UUID, session: SessionDep, _key: PlatformRead) -> TenantOut:
    """Show a tenant."""
    return TenantOut.model_validate(await service.get_tenant(session, tenant_id=tenant_id))


@router.patch(
    "/{tenant_id}",
    response_model=TenantOut,
    responses=responses(TenantNotFound, SipDomainTaken, EmergencyNumberInUse),
)
async def update_tenant(
    tenant_id: uuid.UUID,
    body: TenantUpdate,
    session: SessionDep,
    cipher: CipherDep,
    _key: PlatformAdmin,
) -> TenantOut:
    """Change a tenant's settings."""
    tenant = await directory.update_tenant(session, cipher, tenant_id=tenant_id, data=body)
    return TenantOut.model_validate(tenant)


@router.delete(
    "/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(TenantNotFound)
)
async def delete_tenant(tenant_id: uuid.UUID, session: SessionDep, _key: PlatformAdmin) -> None:
    """Delete a tenant with all its users, devices, extensions, usage and keys."""
    await service.delete_tenant(session, tenant_id=tenant_id)

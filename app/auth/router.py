import uuid

from fastapi import Response, status

from app.auth import service
from app.auth.deps import AuthenticatorDep, IdempotencyDep, TenantKeysAdmin, TenantKeysRead
from app.auth.exceptions import ApiKeyNotFound
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.deps import CipherDep, SessionDep
from app.errors import CREATED, Forbidden, InvalidInput, Unauthorized, responses
from app.idempotency.service import create_once
from app.pagination import Page, PageDep
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound

router = api_router(
    prefix="/v1/tenants/{tenant_id}/api-keys",
    tags=["api keys"],
    responses=responses(Unauthorized, Forbidden, TenantNotFound),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=responses(InvalidInput, CREATED),
)
async def create_api_key(
    tenant_id: uuid.UUID,
    body: ApiKeyCreate,
    session: SessionDep,
    cipher: CipherDep,
    _caller: TenantKeysAdmin,
    once: IdempotencyDep,
) -> Response:
    """Create an API key for a tenant (a platform key, or the tenant's own admin); the key is
    returned only in this answer."""

    async def create() -> tuple[ApiKeyCreated, str]:
        key, secret = await service.create_api_key(
            session,
            tenant_id=tenant_id,
            role=body.role,
            name=body.name,
            expires_at=body.expires_at,
        )
        shown = ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=secret)
        return shown, f"/v1/tenants/{tenant_id}/api-keys/{key.id}"

    return await create_once(session, cipher, once=once, create=create)


@router.get("", response_model=Page[ApiKeyOut])
async def list_api_keys(
    tenant_id: uuid.UUID, session: SessionDep, page: PageDep, _caller: TenantKeysRead
) -> Page[ApiKeyOut]:
    """List a tenant's API keys (never their secrets)."""
    keys = await service.list_api_keys(session, tenant_id=tenant_id)
    return Page.slice([ApiKeyOut.model_validate(k) for k in keys], page)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(ApiKeyNotFound),
)
async def revoke_api_key(
    tenant_id: uuid.UUID,
    key_id: uuid.UUID,
    session: SessionDep,
    authenticator: AuthenticatorDep,
    _caller: TenantKeysAdmin,
) -> None:
    """Revoke an API key; it stops working at once in this process, within seconds in others."""
    await service.revoke_api_key(session, authenticator, tenant_id=tenant_id, key_id=key_id)

import uuid

from fastapi import APIRouter

from app.auth.dependencies import AdminAccess, ReadAccess
from app.database import SessionDep
from app.errors import Forbidden, Unauthorized, responses
from app.pagination import Page, PageDep
from app.quotas import service
from app.quotas.schemas import QuotaHistoryEntry, QuotaOut, QuotaUpdate
from app.tenants.exceptions import TenantNotFound
from app.users.exceptions import UserNotFound

router = APIRouter(
    prefix="/v1/users/{user_id}/quota",
    tags=["quota"],
    responses=responses(Unauthorized, Forbidden, TenantNotFound, UserNotFound),
)


@router.get("", response_model=QuotaOut)
async def get_quota(user_id: uuid.UUID, session: SessionDep, scope: ReadAccess) -> QuotaOut:
    """Show minutes used and allowed this month."""
    return await service.get_quota(session, tenant_id=scope.tenant_id, user_id=user_id)


@router.put("", response_model=QuotaOut)
async def set_quota(
    user_id: uuid.UUID, body: QuotaUpdate, session: SessionDep, scope: AdminAccess
) -> QuotaOut:
    """Set the monthly outbound minutes (null for unlimited)."""
    return await service.set_limit(
        session, tenant_id=scope.tenant_id, user_id=user_id, limit_minutes=body.limit_minutes
    )


@router.get("/history", response_model=Page[QuotaHistoryEntry])
async def get_quota_history(
    user_id: uuid.UUID, session: SessionDep, page: PageDep, scope: ReadAccess
) -> Page[QuotaHistoryEntry]:
    """Past months: minutes allowed and used, newest first."""
    entries, total = await service.quota_history(
        session, tenant_id=scope.tenant_id, user_id=user_id, limit=page.limit, offset=page.offset
    )
    return Page(items=entries, total=total, limit=page.limit, offset=page.offset)

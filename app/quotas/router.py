import uuid

from fastapi import APIRouter

from app.auth.dependencies import AdminAccess, ReadAccess
from app.database import SessionDep
from app.errors import Forbidden, Unauthorized, responses
from app.quotas import service
from app.quotas.schemas import QuotaOut, QuotaUpdate
from app.users.exceptions import UserNotFound

router = APIRouter(
    prefix="/v1/users/{user_id}/quota",
    tags=["quota"],
    responses=responses(Unauthorized, Forbidden, UserNotFound),
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

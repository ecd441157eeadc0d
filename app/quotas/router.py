"""A user's minutes as they are read: the quota, its history, the calls. Setting the limit
answers the user's row too (app/users/parts_router.py)."""

from fastapi import Response

from app.deps import SessionDep
from app.errors import VERSIONED, Forbidden, Unauthorized, responses
from app.etags import set_etag
from app.pagination import Page, PageDep
from app.quotas import service
from app.quotas.schemas import CallOut, QuotaHistoryEntry, QuotaOut
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.user_record.deps import ReadUser
from app.user_record.exceptions import UserNotFound

router = api_router(
    prefix="/v1/users/{user_id}",
    responses=responses(Unauthorized, Forbidden, TenantNotFound, UserNotFound),
)


@router.get("/quota", response_model=QuotaOut, tags=["quota"], responses=responses(VERSIONED))
async def get_quota(session: SessionDep, current: ReadUser, response: Response) -> QuotaOut:
    """Show minutes used and allowed this month."""
    # The ETag versions the limit, not the minutes used.
    set_etag(response, current.user.quota_version)
    return await service.get_quota(session, current=current)


@router.get("/quota/history", response_model=Page[QuotaHistoryEntry], tags=["quota"])
async def get_quota_history(
    session: SessionDep, page: PageDep, current: ReadUser
) -> Page[QuotaHistoryEntry]:
    """Past months: minutes allowed and used, newest first."""
    entries, total = await service.quota_history(
        session,
        tenant_id=current.tenant.id,
        user_id=current.user.id,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of(entries, total, page)


@router.get("/calls", response_model=Page[CallOut], tags=["calls"])
async def list_user_calls(session: SessionDep, page: PageDep, current: ReadUser) -> Page[CallOut]:
    """A user's outbound calls, newest first."""
    calls, total = await service.list_calls(
        session,
        tenant_id=current.tenant.id,
        user_id=current.user.id,
        limit=page.limit,
        offset=page.offset,
    )
    return Page.of(calls, total, page)

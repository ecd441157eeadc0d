"""The quota a route sets, at the version `If-Match` names: the quota's own, which only a
change of the limit raises (a switch of the user leaves it as it is)."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.quotas import service
from app.quotas.schemas import QuotaOut
from app.user_record.deps import changed_user
from app.user_record.service import TenantUser


async def _quota_shown(session: AsyncSession, current: TenantUser) -> QuotaOut:
    return await service.get_quota(session, current=current)


# A 412 shows the quota as it is now.
ChangedQuota = Annotated[TenantUser, Depends(changed_user(lambda u: u.quota_version, _quota_shown))]

"""The user a Users route changes or deletes, at the version `If-Match` names: the user's row
version, which every change of the user raises (its details, its switches, its limit)."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.user_record.deps import changed_user
from app.user_record.service import TenantUser
from app.users import service
from app.users.schemas import Toggles, UserOut


async def _user_shown(session: AsyncSession, current: TenantUser) -> UserOut:
    return await service.get_user(session, current=current)


async def _toggles_shown(_session: AsyncSession, current: TenantUser) -> Toggles:
    return service.toggles(current.user)


# A 412 shows the user (or its switches) as it is now.
ChangedUser = Annotated[
    TenantUser, Depends(changed_user(lambda u: u.version, _user_shown, tagged=True))
]
ChangedToggles = Annotated[TenantUser, Depends(changed_user(lambda u: u.version, _toggles_shown))]

"""The user a route acts on (`{user_id}`), loaded once per request with its tenant: for the
Users routes and for those of the user's devices, extensions and quota."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import EditAccess, ReadAccess
from app.deps import IfMatch, SessionDep
from app.etags import require_match
from app.user_record.models import User
from app.user_record.service import TenantUser, require_user


async def _read_user(user_id: uuid.UUID, session: SessionDep, scope: ReadAccess) -> TenantUser:
    return await require_user(session, tenant_id=scope.tenant_id, user_id=user_id)


async def _edit_user(user_id: uuid.UUID, session: SessionDep, scope: EditAccess) -> TenantUser:
    return await require_user(session, tenant_id=scope.tenant_id, user_id=user_id)


# The user of the route's `{user_id}`, with its tenant; another tenant's user is not found.
ReadUser = Annotated[TenantUser, Depends(_read_user)]
EditUser = Annotated[TenantUser, Depends(_edit_user)]


def changed_user(
    version: Callable[[User], int],
    shown: Callable[[AsyncSession, TenantUser], Awaitable[BaseModel]],
    *,
    tagged: bool = False,
) -> Callable[..., Awaitable[TenantUser]]:
    """The dependency of a user (or of a part of it with a version of its own, the quota) that
    an operator changes or deletes: still at the `version` `If-Match` names, if it names one; a
    stale one is answered with the part as `shown` now (`tagged`: and the tag its read
    answers)."""

    async def changed(
        user_id: uuid.UUID, session: SessionDep, scope: EditAccess, if_match: IfMatch = None
    ) -> TenantUser:
        # Locked as read: concurrent changes of one user go one after the other, each from what
        # the one before it left (and a stale If-Match is told so, not overwritten).
        current = await require_user(
            session, tenant_id=scope.tenant_id, user_id=user_id, for_update=True
        )
        await require_match(
            if_match, version(current.user), current=lambda: shown(session, current), tagged=tagged
        )
        return current

    return changed

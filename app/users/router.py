from fastapi import Response

from app.deps import ChangedUser, ReadUser, SessionDep
from app.errors import VERSIONED, Forbidden, PreconditionFailed, Unauthorized, responses
from app.etags import set_etag
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.users import service
from app.users.exceptions import UserNotFound
from app.users.schemas import Toggles, TogglesUpdate

router = api_router(
    prefix="/v1/users/{user_id}/toggles",
    tags=["toggles"],
    responses=responses(Unauthorized, Forbidden, TenantNotFound, UserNotFound),
)


@router.get("", response_model=Toggles, responses=responses(VERSIONED))
async def get_toggles(current: ReadUser, response: Response) -> Toggles:
    """Show a user's two switches: outbound calls allowed, auto-answer."""
    set_etag(response, current.user.version)
    return service.toggles(current.user)


@router.patch("", response_model=Toggles, responses=responses(PreconditionFailed, VERSIONED))
async def update_toggles(
    body: TogglesUpdate, session: SessionDep, current: ChangedUser, response: Response
) -> Toggles:
    """Turn outbound calls or auto-answer on or off."""
    toggles = await service.update_toggles(session, user=current.user, data=body)
    set_etag(response, current.user.version)
    return toggles

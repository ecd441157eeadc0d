from app.deps import AdminUser, ReadUser, SessionDep
from app.errors import Forbidden, Unauthorized, responses
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.users import service
from app.users.exceptions import UserNotFound
from app.users.schemas import Toggles, TogglesUpdate

router = api_router(
    prefix="/v1/users/{user_id}/toggles",
    tags=["users"],
    responses=responses(Unauthorized, Forbidden, TenantNotFound, UserNotFound),
)


@router.get("", response_model=Toggles)
async def get_toggles(current: ReadUser) -> Toggles:
    """Show a user's two switches: outbound calls allowed, auto-answer."""
    return service.toggles(current.user)


@router.patch("", response_model=Toggles)
async def update_toggles(body: TogglesUpdate, session: SessionDep, current: AdminUser) -> Toggles:
    """Turn outbound calls or auto-answer on or off."""
    return await service.update_toggles(session, user=current.user, data=body)

"""A user's SIP accounts as they are read: a user's list, one device, its settings. Their writes
answer the user's row too, so they are the Users aggregate's (app/users/parts_router.py)."""

from typing import Annotated

from fastapi import Query, Response

from app.auth.deps import ReadAccess, require_role
from app.auth.models import Role
from app.deps import CipherDep, IfNoneMatch, SessionDep, SettingsDep
from app.devices import service
from app.devices.deps import ReadDevice
from app.devices.exceptions import (
    DeviceNotFound,
)
from app.devices.schemas import (
    ConfigReveal,
    DeviceConfig,
    DeviceOut,
)
from app.errors import (
    NOT_MODIFIED,
    READ_TAGGED,
    Forbidden,
    Unauthorized,
    responses,
)
from app.etags import conditional_read
from app.pagination import Page, PageDep
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.user_record.deps import ReadUser
from app.user_record.exceptions import UserNotFound

router = api_router(tags=["devices"], responses=responses(Unauthorized, Forbidden, TenantNotFound))


@router.get(
    "/v1/users/{user_id}/devices", response_model=Page[DeviceOut], responses=responses(UserNotFound)
)
async def list_devices(session: SessionDep, current: ReadUser, page: PageDep) -> Page[DeviceOut]:
    """List a user's SIP accounts."""
    devices = await service.list_devices(
        session, tenant_id=current.tenant.id, user_id=current.user.id
    )
    return Page.slice(devices, page)


@router.get(
    "/v1/devices/{device_id}",
    response_model=DeviceOut,
    responses=responses(DeviceNotFound, READ_TAGGED, NOT_MODIFIED),
)
async def get_device(
    session: SessionDep, current: ReadDevice, if_none_match: IfNoneMatch = None
) -> Response:
    """Show a SIP account, and whether it is registered."""
    [shown] = await service.device_views(
        session, tenant_id=current.tenant.id, devices=[current.device]
    )
    return conditional_read(if_none_match, shown, version=current.device.version)


@router.get(
    "/v1/devices/{device_id}/config",
    response_model=DeviceConfig,
    responses=responses(DeviceNotFound),
)
async def get_device_config(
    session: SessionDep,
    cipher: CipherDep,
    settings: SettingsDep,
    current: ReadDevice,
    scope: ReadAccess,
    response: Response,
    reveal: Annotated[
        ConfigReveal | None,
        Query(
            description="`password`: show the SIP password too (admins and operators only); "
            "the reveal is written to the audit trail with who asked and from where."
        ),
    ] = None,
) -> DeviceConfig:
    """Show a SIP account's settings for the web client and for an IP phone; the password only
    when revealed."""
    if reveal is ConfigReveal.password:
        require_role(scope.principal, (Role.admin, Role.operator))
    response.headers["Cache-Control"] = "no-store"
    return await service.show_device_config(
        session, cipher, settings, current=current, reveal_password=reveal is not None
    )

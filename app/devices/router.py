from fastapi import Response, status

from app.auth.deps import IdempotencyDep
from app.deps import CipherDep, SessionDep, SettingsDep
from app.devices import service
from app.devices.deps import AdminDevice, ChangedDevice, ReadDevice
from app.devices.exceptions import (
    DeviceNameTaken,
    DeviceNotFound,
    MacAddressTaken,
)
from app.devices.schemas import (
    DeviceConfig,
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    DeviceUpdate,
    PasswordRotate,
    PasswordRotated,
)
from app.errors import (
    CREATED_VERSIONED,
    VERSIONED,
    Forbidden,
    InvalidInput,
    Stale,
    Unauthorized,
    responses,
)
from app.etags import set_etag
from app.idempotency.service import create_once
from app.pagination import Page, PageDep
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.user_record.deps import AdminUser, ReadUser
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


@router.post(
    "/v1/users/{user_id}/devices",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceCreated,
    responses=responses(
        UserNotFound, DeviceNameTaken, MacAddressTaken, InvalidInput, CREATED_VERSIONED
    ),
)
async def create_device(
    body: DeviceCreate,
    session: SessionDep,
    cipher: CipherDep,
    current: AdminUser,
    once: IdempotencyDep,
) -> Response:
    """Add a SIP account for one more device of a user."""

    async def create() -> tuple[DeviceCreated, str]:
        device, password = await service.add_device(
            session, cipher, tenant=current.tenant, user_id=current.user.id, data=body
        )
        shown = DeviceCreated(
            **DeviceOut.of(device, contact_count=0).model_dump(), password=password
        )
        return shown, f"/v1/devices/{device.id}"

    return await create_once(session, cipher, once=once, create=create)


@router.get(
    "/v1/devices/{device_id}",
    response_model=DeviceOut,
    responses=responses(DeviceNotFound, VERSIONED),
)
async def get_device(session: SessionDep, current: ReadDevice, response: Response) -> DeviceOut:
    """Show a SIP account, and whether it is registered."""
    set_etag(response, current.device.version)
    [shown] = await service.device_views(
        session, tenant_id=current.tenant.id, devices=[current.device]
    )
    return shown


@router.patch(
    "/v1/devices/{device_id}",
    response_model=DeviceOut,
    responses=responses(
        DeviceNotFound,
        DeviceNameTaken,
        MacAddressTaken,
        InvalidInput,
        Stale(DeviceOut),
        VERSIONED,
    ),
)
async def update_device(
    body: DeviceUpdate,
    session: SessionDep,
    cipher: CipherDep,
    current: ChangedDevice,
    response: Response,
) -> DeviceOut:
    """Rename, change the kind of, enable or disable a SIP account, or set its phone's MAC."""
    device = await service.update_device(session, cipher, current=current, data=body)
    set_etag(response, device.version)
    [shown] = await service.device_views(session, tenant_id=current.tenant.id, devices=[device])
    return shown


@router.delete(
    "/v1/devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(DeviceNotFound, Stale(DeviceOut)),
)
async def delete_device(session: SessionDep, current: ChangedDevice) -> None:
    """Delete a SIP account."""
    await service.delete_device(session, current=current)


@router.get(
    "/v1/devices/{device_id}/config",
    response_model=DeviceConfig,
    responses=responses(DeviceNotFound),
)
async def get_device_config(
    session: SessionDep, cipher: CipherDep, settings: SettingsDep, current: AdminDevice
) -> DeviceConfig:
    """Show a SIP account's settings for the web client and for an IP phone, password included."""
    return await service.device_config(session, cipher, settings, current=current)


@router.post(
    "/v1/devices/{device_id}/password",
    response_model=PasswordRotated,
    responses=responses(DeviceNotFound, InvalidInput, Stale(DeviceOut)),
)
async def rotate_device_password(
    body: PasswordRotate, session: SessionDep, cipher: CipherDep, current: ChangedDevice
) -> PasswordRotated:
    """Set a new password (generated unless given); it is returned once."""
    device, password = await service.rotate_password(
        session, cipher, current=current, password=body.password
    )
    return PasswordRotated(device_id=device.id, password=password)

import uuid

from fastapi import APIRouter, status

from app.auth.dependencies import AdminAccess, ReadAccess
from app.database import SessionDep
from app.deps import CipherDep, SettingsDep
from app.devices import service
from app.devices.exceptions import DeviceNameTaken, DeviceNotFound
from app.devices.schemas import (
    DeviceConfig,
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    DeviceUpdate,
    PasswordRotate,
    PasswordRotated,
)
from app.errors import Forbidden, InvalidInput, Unauthorized, responses
from app.tenants.exceptions import TenantNotFound
from app.users.exceptions import UserNotFound

router = APIRouter(tags=["devices"], responses=responses(Unauthorized, Forbidden, TenantNotFound))


@router.get(
    "/v1/users/{user_id}/devices", response_model=list[DeviceOut], responses=responses(UserNotFound)
)
async def list_devices(
    user_id: uuid.UUID, session: SessionDep, scope: ReadAccess
) -> list[DeviceOut]:
    """List a user's SIP accounts."""
    devices = await service.list_devices(session, tenant_id=scope.tenant_id, user_id=user_id)
    return [DeviceOut.model_validate(d) for d in devices]


@router.post(
    "/v1/users/{user_id}/devices",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceCreated,
    responses=responses(UserNotFound, DeviceNameTaken, InvalidInput),
)
async def create_device(
    user_id: uuid.UUID,
    body: DeviceCreate,
    session: SessionDep,
    cipher: CipherDep,
    scope: AdminAccess,
) -> DeviceCreated:
    """Add a SIP account for one more device of a user."""
    device, password = await service.create_device(
        session, cipher, tenant_id=scope.tenant_id, user_id=user_id, data=body
    )
    return DeviceCreated(**DeviceOut.model_validate(device).model_dump(), password=password)


@router.get(
    "/v1/devices/{device_id}", response_model=DeviceOut, responses=responses(DeviceNotFound)
)
async def get_device(device_id: uuid.UUID, session: SessionDep, scope: ReadAccess) -> DeviceOut:
    """Show a SIP account."""
    device = await service.get_device(session, tenant_id=scope.tenant_id, device_id=device_id)
    return DeviceOut.model_validate(device)


@router.patch(
    "/v1/devices/{device_id}",
    response_model=DeviceOut,
    responses=responses(DeviceNotFound, DeviceNameTaken, InvalidInput),
)
async def update_device(
    device_id: uuid.UUID,
    body: DeviceUpdate,
    session: SessionDep,
    cipher: CipherDep,
    scope: AdminAccess,
) -> DeviceOut:
    """Rename, change the kind of, enable or disable a SIP account."""
    device = await service.update_device(
        session, cipher, tenant_id=scope.tenant_id, device_id=device_id, data=body
    )
    return DeviceOut.model_validate(device)


@router.delete(
    "/v1/devices/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(DeviceNotFound),
)
async def delete_device(device_id: uuid.UUID, session: SessionDep, scope: AdminAccess) -> None:
    """Delete a SIP account."""
    await service.delete_device(session, tenant_id=scope.tenant_id, device_id=device_id)


@router.get(
    "/v1/devices/{device_id}/config",
    response_model=DeviceConfig,
    responses=responses(DeviceNotFound),
)
async def get_device_config(
    device_id: uuid.UUID,
    session: SessionDep,
    cipher: CipherDep,
    settings: SettingsDep,
    scope: AdminAccess,
) -> DeviceConfig:
    """Show a SIP account's settings for the web client and for an IP phone, password included."""
    return await service.device_config(
        session, cipher, settings, tenant_id=scope.tenant_id, device_id=device_id
    )


@router.post(
    "/v1/devices/{device_id}/password",
    response_model=PasswordRotated,
    responses=responses(DeviceNotFound, InvalidInput),
)
async def rotate_device_password(
    device_id: uuid.UUID,
    body: PasswordRotate,
    session: SessionDep,
    cipher: CipherDep,
    scope: AdminAccess,
) -> PasswordRotated:
    """Set a new password (generated unless given); it is returned once."""
    device, password = await service.rotate_password(
        session, cipher, tenant_id=scope.tenant_id, device_id=device_id, password=body.password
    )
    return PasswordRotated(device_id=device.id, password=password)

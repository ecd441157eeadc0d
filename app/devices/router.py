from fastapi import Response, status

from app.auth.deps import IdempotencyDep
from app.callcontrol.deps import CallControlAccess
from app.deps import CipherDep, SessionDep, SettingsDep
from app.devices import registrations, service
from app.devices.deps import AdminDevice, ChangedDevice, ReadDevice
from app.devices.exceptions import (
    DeviceNameTaken,
    DeviceNotFound,
    MacAddressTaken,
    SipAccountNotFound,
)
from app.devices.schemas import (
    DeviceConfig,
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    DeviceUpdate,
    PasswordRotate,
    PasswordRotated,
    RegistrationBatch,
    RegistrationBatchResult,
    RegistrationOut,
    RegistrationReport,
    RegistrationState,
)
from app.errors import (
    CREATED,
    VERSIONED,
    Forbidden,
    InvalidInput,
    PreconditionFailed,
    ServiceUnavailable,
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
    responses=responses(UserNotFound, DeviceNameTaken, MacAddressTaken, InvalidInput, CREATED),
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
        PreconditionFailed,
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
    responses=responses(DeviceNotFound, PreconditionFailed),
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
    responses=responses(DeviceNotFound, InvalidInput, PreconditionFailed),
)
async def rotate_device_password(
    body: PasswordRotate, session: SessionDep, cipher: CipherDep, current: ChangedDevice
) -> PasswordRotated:
    """Set a new password (generated unless given); it is returned once."""
    device, password = await service.rotate_password(
        session, cipher, current=current, password=body.password
    )
    return PasswordRotated(device_id=device.id, password=password)


@router.get(
    "/v1/devices/{device_id}/registrations",
    response_model=Page[RegistrationOut],
    responses=responses(DeviceNotFound),
)
async def list_registrations(
    session: SessionDep, current: ReadDevice, page: PageDep
) -> Page[RegistrationOut]:
    """List a SIP account's live registrations, at every edge."""
    rows, total = await registrations.live_registrations(
        session, device=current.device, limit=page.limit, offset=page.offset
    )
    return Page.of([RegistrationOut.model_validate(row) for row in rows], total, page)


@router.delete(
    "/v1/devices/{device_id}/registrations",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(DeviceNotFound),
)
async def end_registrations(session: SessionDep, current: AdminDevice) -> None:
    """End a SIP account's registrations, at the edges too: its phones must register again."""
    await registrations.end_registrations(
        session,
        tenant=current.tenant,
        device=current.device,
        reason=registrations.ENDED,
        keep_cached=True,
    )


# What the SIP edges report: call-control keys, like the rest of /v1/call-control.
call_control_router = api_router(
    prefix="/v1/call-control",
    tags=["call control"],
    responses=responses(Unauthorized, Forbidden, ServiceUnavailable),
)


@call_control_router.post(
    "/registrations",
    response_model=RegistrationState,
    responses=responses(SipAccountNotFound, InvalidInput),
)
async def report_registration(
    body: RegistrationReport, session: SessionDep, cc: CallControlAccess
) -> RegistrationState:
    """Registration report: one account's contacts at one edge, applied last writer wins."""
    return await registrations.report(
        session,
        report=body,
        tenant_id=cc.key.tenant_id,
        future_seconds=cc.settings.usage_future_seconds,
    )


@call_control_router.post(
    "/registrations/batch",
    response_model=RegistrationBatchResult,
    responses=responses(InvalidInput),
)
async def report_registrations(
    body: RegistrationBatch, session: SessionDep, cc: CallControlAccess
) -> RegistrationBatchResult:
    """Registration reports of one edge: each applied, or refused with its problem, on its own."""
    return await registrations.report_batch(
        session,
        batch=body,
        tenant_id=cc.key.tenant_id,
        future_seconds=cc.settings.usage_future_seconds,
    )

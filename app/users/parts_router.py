"""The writes of a user's devices, extensions and quota, made from the Users table: each one
answers what it changed with the user's row as the change left it (a deletion: on
`Prefer: return=representation`), so the console redraws the row without reading it again.
They are the Users aggregate's because the row is; the rules stay in each domain's service."""

from typing import Annotated, Any

from fastapi import Header, Response, status
from fastapi.responses import JSONResponse

from app.auth.deps import IdempotencyDep
from app.deps import CipherDep, SessionDep
from app.devices import service as devices
from app.devices.deps import ChangedDevice
from app.devices.exceptions import DeviceNameTaken, DeviceNotFound, MacAddressTaken
from app.devices.schemas import DeviceCreate, DeviceOut, DeviceUpdate, PasswordRotate
from app.errors import (
    CREATED,
    CREATED_VERSIONED,
    READ_TAGGED,
    VERSIONED,
    Forbidden,
    InvalidInput,
    Stale,
    Unauthorized,
    responses,
)
from app.etags import set_etag, set_shown_etag
from app.extensions import service as extensions
from app.extensions.exceptions import ExtensionNotFound, ExtensionTaken
from app.extensions.router import NumberPath
from app.extensions.schemas import ExtensionCreate, ExtensionOut
from app.idempotency.service import create_once
from app.quotas import service as quotas
from app.quotas.deps import ChangedQuota
from app.quotas.schemas import QuotaOut, QuotaUpdate
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound
from app.user_record.deps import EditUser
from app.user_record.exceptions import UserNotFound
from app.users.schemas import (
    DeviceCreatedWithUser,
    DeviceWithUser,
    ExtensionWithUser,
    PasswordRotatedWithUser,
    QuotaWithUser,
    UserRow,
)
from app.users.service import user_row

router = api_router(responses=responses(Unauthorized, Forbidden, TenantNotFound))

RETURN_REPRESENTATION = "return=representation"

Prefer = Annotated[
    str | None,
    Header(
        description="`return=representation`: answer 200 with the user's row as the deletion "
        "left it, instead of 204 without a body (RFC 7240).",
        examples=[RETURN_REPRESENTATION],
    ),
]


def _wants_row(prefer: str | None) -> bool:
    return prefer is not None and any(
        part.split(";")[0].strip().lower() == RETURN_REPRESENTATION for part in prefer.split(",")
    )


def _deleted(row: UserRow | None) -> Response:
    if row is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return JSONResponse(
        row.model_dump(mode="json"), headers={"Preference-Applied": RETURN_REPRESENTATION}
    )


_ROW_ON_REQUEST: dict[int | str, dict[str, Any]] = {
    200: {
        "model": UserRow,
        "description": "With `Prefer: return=representation`: the user's row as the deletion "
        "left it.",
    },
    204: {"description": "Deleted."},
}


@router.post(
    "/v1/users/{user_id}/devices",
    tags=["devices"],
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceCreatedWithUser,
    responses=responses(
        UserNotFound, DeviceNameTaken, MacAddressTaken, InvalidInput, CREATED_VERSIONED
    ),
)
async def create_device(
    body: DeviceCreate,
    session: SessionDep,
    cipher: CipherDep,
    current: EditUser,
    once: IdempotencyDep,
) -> Response:
    """Add a SIP account for one more device of a user."""

    async def create() -> tuple[DeviceCreatedWithUser, str]:
        device, password = await devices.add_device(
            session, cipher, tenant=current.tenant, user_id=current.user.id, data=body
        )
        shown = DeviceCreatedWithUser(
            **DeviceOut.of(device, contact_count=0).model_dump(),
            password=password,
            user=await user_row(session, tenant=current.tenant, user_id=current.user.id),
        )
        return shown, f"/v1/devices/{device.id}"

    return await create_once(session, cipher, once=once, create=create)


@router.patch(
    "/v1/devices/{device_id}",
    tags=["devices"],
    response_model=DeviceWithUser,
    responses=responses(
        DeviceNotFound,
        DeviceNameTaken,
        MacAddressTaken,
        InvalidInput,
        Stale(DeviceOut),
        READ_TAGGED,
    ),
)
async def update_device(
    body: DeviceUpdate,
    session: SessionDep,
    cipher: CipherDep,
    current: ChangedDevice,
    response: Response,
) -> DeviceWithUser:
    """Rename, change the kind of, enable or disable a SIP account, or set its phone's MAC."""
    device = await devices.update_device(session, cipher, current=current, data=body)
    [shown] = await devices.device_views(session, tenant_id=current.tenant.id, devices=[device])
    set_shown_etag(response, shown, device.version)
    row = await user_row(session, tenant=current.tenant, user_id=device.user_id)
    return DeviceWithUser(**shown.model_dump(), user=row)


@router.delete(
    "/v1/devices/{device_id}",
    tags=["devices"],
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**responses(DeviceNotFound, Stale(DeviceOut)), **_ROW_ON_REQUEST},
)
async def delete_device(
    session: SessionDep, current: ChangedDevice, prefer: Prefer = None
) -> Response:
    """Delete a SIP account."""
    user_id = current.device.user_id
    await devices.delete_device(session, current=current)
    if not _wants_row(prefer):
        return _deleted(None)
    return _deleted(UserRow(user=await user_row(session, tenant=current.tenant, user_id=user_id)))


@router.post(
    "/v1/devices/{device_id}/password",
    tags=["devices"],
    response_model=PasswordRotatedWithUser,
    responses=responses(DeviceNotFound, InvalidInput, Stale(DeviceOut)),
)
async def rotate_device_password(
    body: PasswordRotate, session: SessionDep, cipher: CipherDep, current: ChangedDevice
) -> PasswordRotatedWithUser:
    """Set a new password (generated unless given); it is returned once."""
    device, password = await devices.rotate_password(
        session, cipher, current=current, password=body.password
    )
    row = await user_row(session, tenant=current.tenant, user_id=device.user_id)
    return PasswordRotatedWithUser(device_id=device.id, password=password, user=row)


@router.post(
    "/v1/users/{user_id}/extensions",
    tags=["extensions"],
    status_code=status.HTTP_201_CREATED,
    response_model=ExtensionWithUser,
    responses=responses(UserNotFound, ExtensionTaken, InvalidInput, CREATED),
)
async def add_user_extension(
    body: ExtensionCreate,
    session: SessionDep,
    cipher: CipherDep,
    current: EditUser,
    once: IdempotencyDep,
) -> Response:
    """Give a user an extension (2 to 4 digits, unique in the company)."""

    async def create() -> tuple[ExtensionWithUser, str]:
        extension = await extensions.add_extension(
            session, tenant=current.tenant, user_id=current.user.id, number=body.number
        )
        shown = ExtensionWithUser(
            **ExtensionOut.model_validate(extension).model_dump(),
            user=await user_row(session, tenant=current.tenant, user_id=current.user.id),
        )
        return shown, f"/v1/extensions/{extension.number}"

    return await create_once(session, cipher, once=once, create=create)


@router.delete(
    "/v1/users/{user_id}/extensions/{number}",
    tags=["extensions"],
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={**responses(UserNotFound, ExtensionNotFound), **_ROW_ON_REQUEST},
)
async def remove_user_extension(
    number: NumberPath, session: SessionDep, current: EditUser, prefer: Prefer = None
) -> Response:
    """Take an extension away from a user."""
    await extensions.remove_extension(
        session, tenant_id=current.tenant.id, user_id=current.user.id, number=number
    )
    if not _wants_row(prefer):
        return _deleted(None)
    return _deleted(
        UserRow(user=await user_row(session, tenant=current.tenant, user_id=current.user.id))
    )


@router.put(
    "/v1/users/{user_id}/quota",
    tags=["quota"],
    response_model=QuotaWithUser,
    responses=responses(UserNotFound, Stale(QuotaOut), VERSIONED),
)
async def set_quota(
    body: QuotaUpdate, session: SessionDep, current: ChangedQuota, response: Response
) -> QuotaWithUser:
    """Set the monthly outbound minutes (null for unlimited)."""
    quota = await quotas.set_limit(session, current=current, limit_minutes=body.limit_minutes)
    set_etag(response, current.user.quota_version)
    row = await user_row(session, tenant=current.tenant, user_id=current.user.id)
    return QuotaWithUser(**quota.model_dump(), user=row)

"""Registrations over HTTP: a device's live registrations (listed, or ended by an operator),
and the SIP edges' reports of them (call-control keys, like the rest of /v1/call-control)."""

from fastapi import Response, status

from app.callcontrol.deps import CallControlAccess
from app.deps import LanguageDep, SessionDep
from app.devices import service as devices
from app.devices.deps import EditDevice, ReadDevice
from app.devices.exceptions import DeviceNotFound, SipAccountNotFound
from app.errors import Forbidden, InvalidInput, ServiceUnavailable, Unauthorized, responses
from app.pagination import Page, PageDep
from app.registrations import service as registrations
from app.registrations.schemas import (
    RegistrationBatch,
    RegistrationBatchResult,
    RegistrationOut,
    RegistrationReport,
    RegistrationState,
)
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound

# Under /v1/devices, with the devices' tag and answers.
device_router = api_router(
    tags=["devices"], responses=responses(Unauthorized, Forbidden, TenantNotFound)
)


@device_router.get(
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


@device_router.delete(
    "/v1/devices/{device_id}/registrations",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(DeviceNotFound),
)
async def end_registrations(session: SessionDep, current: EditDevice) -> None:
    """End a SIP account's registrations, at the edges too: its phones must register again."""
    await devices.end_registrations(
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
        tenant_id=cc.principal.tenant_id,
        future_seconds=cc.settings.usage_future_seconds,
    )


@call_control_router.post(
    "/registrations/batch",
    response_model=RegistrationBatchResult,
    responses=responses(InvalidInput),
)
async def report_registrations(
    body: RegistrationBatch, session: SessionDep, cc: CallControlAccess, language: LanguageDep
) -> RegistrationBatchResult:
    """Registration reports of one edge: each applied, or refused with its problem, on its own."""
    return await registrations.report_batch(
        session,
        batch=body,
        tenant_id=cc.principal.tenant_id,
        future_seconds=cc.settings.usage_future_seconds,
        language=language,
    )

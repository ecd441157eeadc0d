from typing import Annotated

from fastapi import Path, Query, Response, status
from pydantic import BaseModel

from app.callcontrol import service
from app.callcontrol.deps import CallControlAccess
from app.callcontrol.exceptions import CallerNotFound
from app.callcontrol.schemas import (
    AuthorizationOut,
    AuthorizationRequest,
    ExtensionRoute,
    SipAccount,
    SipAccountLookups,
    SipAccountsFound,
    UsageReport,
)
from app.clock import utcnow
from app.devices.exceptions import SipAccountNotFound
from app.errors import Forbidden, ServiceUnavailable, Unauthorized, responses
from app.extensions.exceptions import ExtensionNotFound
from app.quotas.schemas import CallOut
from app.routing import api_router
from app.tenants.schemas import SipDomain


def json_response(model: BaseModel, *, status_code: int = 200) -> Response:
    """The model serialized by pydantic alone: the hot routes skip FastAPI's second validation
    and its JSON encoding (the route's response_model still documents the body)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


router = api_router(
    prefix="/v1/call-control",
    tags=["call control"],
    responses=responses(Unauthorized, Forbidden, ServiceUnavailable),
)

DomainQuery = Annotated[SipDomain, Query(description="The tenant's SIP domain (realm).")]


@router.get(
    "/sip-accounts/{username}",
    response_model=SipAccount,
    responses=responses(SipAccountNotFound),
)
async def lookup_sip_account(
    username: Annotated[str, Path(max_length=64)],
    domain: DomainQuery,
    cc: CallControlAccess,
) -> Response:
    """Registrar lookup: the digest HA1 and state of a SIP account."""
    account = await service.sip_account(
        cc.store, domain=domain, username=username, tenant_id=cc.principal.tenant_id
    )
    return json_response(account)


@router.post("/sip-accounts/lookups", response_model=SipAccountsFound)
async def lookup_sip_accounts(body: SipAccountLookups, cc: CallControlAccess) -> Response:
    """Registrar lookups sent together (an edge's REGISTERs waiting on the service), answered
    by one statement: each account by `username@domain` as asked, null when there is none."""
    found = await service.sip_accounts(cc.store, body.accounts, tenant_id=cc.principal.tenant_id)
    return json_response(found)


@router.get(
    "/extensions/{number}",
    response_model=ExtensionRoute,
    responses=responses(ExtensionNotFound),
)
async def route_extension(
    number: Annotated[str, Path(pattern=r"^[0-9]{2,4}$")],
    domain: DomainQuery,
    cc: CallControlAccess,
) -> Response:
    """Hotline and internal routing: the devices to ring for an extension, with auto-answer."""
    route = await service.extension_route(
        cc.store, domain=domain, number=number, tenant_id=cc.principal.tenant_id
    )
    return json_response(route)


@router.post("/authorizations", response_model=AuthorizationOut)
async def authorize_call(body: AuthorizationRequest, cc: CallControlAccess) -> Response:
    """Outbound authorization: may this caller call this number now, and for how long."""
    answer = await service.authorize(
        cc.store,
        request=body,
        tenant_id=cc.principal.tenant_id,
        now=utcnow(),
        hold_grace_seconds=cc.settings.hold_grace_seconds,
        open_call_seconds=cc.settings.open_call_seconds,
    )
    return json_response(answer)


@router.post(
    "/usage",
    response_model=CallOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": CallOut, "description": "Already recorded: the first result."},
        **responses(CallerNotFound),
    },
)
async def report_usage(body: UsageReport, cc: CallControlAccess) -> Response:
    """Usage report: record a finished outbound call once and charge its minutes."""
    window = service.UsageWindow(cc.settings.usage_late_months, cc.settings.usage_future_seconds)
    call, created = await service.record_usage(
        cc.store,
        report=body,
        tenant_id=cc.principal.tenant_id,
        now=utcnow(),
        window=window,
        minutes=cc.minutes,
    )
    return json_response(call, status_code=201 if created else 200)

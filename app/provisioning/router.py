import uuid
from typing import Any

from fastapi import Request, Response, status

from app.auth.deps import AdminAccess, AuthThrottleDep
from app.deps import CipherDep, SessionDep, SettingsDep
from app.devices.deps import EditDevice
from app.devices.exceptions import DeviceNotFound
from app.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    TooManyRequests,
    Unauthorized,
    error_response,
    negotiate,
    responses,
)
from app.pagination import Page, PageDep
from app.provisioning import service
from app.provisioning.deps import PublicBaseUrl
from app.provisioning.exceptions import (
    LinkGone,
    NoPhoneTransport,
    ProvisioningFileNotFound,
    ProvisioningForbidden,
    ProvisioningNotEnabled,
    ProvisioningUnauthorized,
)
from app.provisioning.schemas import (
    CredentialsRotated,
    DeviceProvisioningOut,
    FetchOut,
    ProvisioningCode,
    ProvisioningLinkCreate,
    ProvisioningOut,
    ProvisioningUpdate,
)
from app.provisioning.service import FetchAnswer, FetchRequest
from app.routing import api_router
from app.tenants.exceptions import TenantNotFound

router = api_router(
    tags=["provisioning"], responses=responses(Unauthorized, Forbidden, TenantNotFound)
)
# What phones and softphones fetch: no API key (they cannot send one), so not under /v1.
files_router = api_router(prefix="/provision", tags=["provisioning"])


@router.get("/v1/provisioning", response_model=ProvisioningOut)
async def get_provisioning(
    session: SessionDep, scope: AdminAccess, base_url: PublicBaseUrl
) -> ProvisioningOut:
    """Show how the tenant's phones fetch their files (never the secret)."""
    return await service.get_provisioning(session, tenant_id=scope.tenant_id, base_url=base_url)


@router.patch(
    "/v1/provisioning",
    response_model=ProvisioningOut,
    responses=responses(ProvisioningNotEnabled, InvalidInput),
)
async def update_provisioning(
    body: ProvisioningUpdate, session: SessionDep, scope: AdminAccess, base_url: PublicBaseUrl
) -> ProvisioningOut:
    """Change the networks the tenant's phones may fetch their files from."""
    return await service.update_provisioning(
        session, tenant_id=scope.tenant_id, data=body, base_url=base_url
    )


@router.delete(
    "/v1/provisioning",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=responses(ProvisioningNotEnabled),
)
async def disable_provisioning(session: SessionDep, scope: AdminAccess) -> None:
    """Delete the provisioning credentials: no phone can fetch its file until new ones are made."""
    await service.disable_provisioning(session, tenant_id=scope.tenant_id)


@router.post(
    "/v1/provisioning/credentials",
    response_model=CredentialsRotated,
    responses=responses(Conflict),
)
async def rotate_provisioning_credentials(
    session: SessionDep, cipher: CipherDep, scope: AdminAccess, base_url: PublicBaseUrl
) -> CredentialsRotated:
    """Make the provisioning credentials (the first time) or rotate the secret; shown once."""
    access, secret = await service.rotate_credentials(session, cipher, tenant_id=scope.tenant_id)
    return CredentialsRotated(
        username=access.username,
        password=secret,
        files_url=service.files_url(base_url, scope.tenant_id),
    )


@router.get("/v1/provisioning/fetches", response_model=Page[FetchOut])
async def list_provisioning_fetches(
    session: SessionDep, scope: AdminAccess, page: PageDep
) -> Page[FetchOut]:
    """The tenant's provisioning fetches, served or refused, newest first."""
    fetches, total = await service.list_fetches(
        session, tenant_id=scope.tenant_id, limit=page.limit, offset=page.offset
    )
    return Page.of([FetchOut.model_validate(f) for f in fetches], total, page)


@router.get(
    "/v1/devices/{device_id}/provisioning",
    response_model=DeviceProvisioningOut,
    responses=responses(DeviceNotFound),
)
async def get_device_provisioning(
    session: SessionDep, current: EditDevice, base_url: PublicBaseUrl
) -> DeviceProvisioningOut:
    """Show where an IP phone's file is served, and its latest fetches."""
    return await service.device_provisioning(session, current=current, base_url=base_url)


@router.post(
    "/v1/devices/{device_id}/provisioning-links",
    status_code=status.HTTP_201_CREATED,
    response_model=ProvisioningCode,
    responses=responses(DeviceNotFound, InvalidInput, NoPhoneTransport),
)
async def create_provisioning_code(
    body: ProvisioningLinkCreate,
    session: SessionDep,
    cipher: CipherDep,
    settings: SettingsDep,
    current: EditDevice,
    base_url: PublicBaseUrl,
    response: Response,
) -> ProvisioningCode:
    """Make a QR code that sets a softphone up with this SIP account."""
    response.headers["Cache-Control"] = "no-store"
    return await service.create_code(
        session, cipher, settings, current=current, app=body.app, base_url=base_url
    )


def _fetch_request(request: Request) -> FetchRequest:
    # The request-target as sent: a digest response is made over it.
    uri = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    if request.url.query:
        uri += "?" + request.url.query
    return FetchRequest(
        client_address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent"),
        authorization=request.headers.get("authorization"),
        method=request.method,
        uri=uri,
    )


def _answer(answer: FetchAnswer, request: Request) -> Response:
    if answer.refusal is not None:
        # Answered, not raised: the session keeps the fetch's record.
        refused = error_response(answer.refusal, negotiate(request.headers.get("accept-language")))
        for challenge in answer.challenges:
            refused.raw_headers.append((b"www-authenticate", challenge.encode()))
        return refused
    assert answer.file is not None
    return Response(
        answer.file.body,
        media_type=answer.file.media_type,
        headers={"Cache-Control": "no-store"},
    )


_FILE_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, made from the device's settings at this request.",
        "content": {"text/plain": {}, "application/xml": {}},
    }
}


@files_router.get(
    "/links/{token}",
    response_class=Response,
    responses={**_FILE_CONTENT, **responses(ProvisioningFileNotFound, LinkGone)},
    openapi_extra={"security": []},
)
async def open_provisioning_link(
    token: str, request: Request, session: SessionDep, cipher: CipherDep, settings: SettingsDep
) -> Response:
    """A softphone's one-time provisioning link (the QR code's): works once, then 410."""
    answer = await service.open_link(
        session, cipher, settings, token=token, request=_fetch_request(request)
    )
    return _answer(answer, request)


# After the links: `links` is not a tenant's id.
@files_router.get(
    "/{tenant_id}/{filename}",
    response_class=Response,
    responses={
        **_FILE_CONTENT,
        **responses(
            ProvisioningUnauthorized,
            ProvisioningForbidden,
            ProvisioningFileNotFound,
            TooManyRequests,
        ),
    },
    openapi_extra={"security": []},
)
async def fetch_provisioning_file(
    tenant_id: uuid.UUID,
    filename: str,
    request: Request,
    session: SessionDep,
    cipher: CipherDep,
    settings: SettingsDep,
    throttle: AuthThrottleDep,
) -> Response:
    """An IP phone's provisioning file, with the tenant's provisioning credentials."""
    answer = await service.fetch_file(
        session,
        cipher,
        settings,
        throttle,
        tenant_id=tenant_id,
        filename=filename,
        request=_fetch_request(request),
    )
    return _answer(answer, request)

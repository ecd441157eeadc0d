"""Every dependency a route takes, as an `Annotated` alias: the request's session and the app's
objects, who is calling (the key, and the tenant it acts on), and the resource a route acts on,
loaded once per request (the user: app/user_record/deps.py)."""

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Role
from app.auth.repository import KeyIdentity
from app.auth.service import Authenticator
from app.auth.throttle import FailedAuthThrottle
from app.callcontrol.access import CallControl
from app.crypto import PasswordCipher
from app.db.session import Database
from app.devices import service as devices
from app.devices.service import TenantDevice
from app.errors import Forbidden, InvalidInput, TooManyRequests, Unauthorized
from app.etags import IF_MATCH_PATTERN, require_match
from app.idempotency.service import IdempotentRequest, request_hash
from app.imports.runner import ImportRunner
from app.outbox.record import Actor, acting
from app.settings import Settings
from app.tenants import service as tenants
from app.tenants.models import Tenant
from app.webhooks import service as webhooks
from app.webhooks.models import WebhookEndpoint

# Dependencies are async: FastAPI runs a sync one in a worker thread, a cost on every request.


async def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _cipher(request: Request) -> PasswordCipher:
    cipher: PasswordCipher = request.app.state.cipher
    return cipher


async def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


async def _auth_throttle(request: Request) -> FailedAuthThrottle:
    throttle: FailedAuthThrottle = request.app.state.auth_throttle
    return throttle


async def _import_runner(request: Request) -> ImportRunner:
    runner: ImportRunner = request.app.state.imports
    return runner


async def _public_base_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.provisioning_base_url or str(request.base_url).rstrip("/")


DatabaseDep = Annotated[Database, Depends(_database)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CipherDep = Annotated[PasswordCipher, Depends(_cipher)]
AuthenticatorDep = Annotated[Authenticator, Depends(_authenticator)]
# The origin phones and softphones reach the service at (ANTRING_PROVISIONING_BASE_URL, else the
# request's own).
PublicBaseUrl = Annotated[str, Depends(_public_base_url)]
# Failed authentications per client address, in this process.
AuthThrottleDep = Annotated[FailedAuthThrottle, Depends(_auth_throttle)]
# The import jobs of this process.
ImportRunnerDep = Annotated[ImportRunner, Depends(_import_runner)]


async def _request_session(request: Request, db: DatabaseDep) -> AsyncIterator[AsyncSession]:
    async with db.session_scope() as session:
        yield session
    if request.method != "GET":
        # A change may have written events: the delivery worker looks now, not at its poll.
        request.app.state.dispatcher.wake()


# The request's unit of work. scope="function": it commits, and gives its connection back,
# before the response is sent.
SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ark_...`")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


# Call control only: Kamailio's kept HTTP connections (http_client's `http_connect`) cannot send
# a Bearer header, only the connection's user and password.
class _LenientBasic(HTTPBasic):
    """Malformed Basic credentials are missing credentials: the one 401 (and the failure count)
    of `_authenticate`, not a bare exception of its own."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        try:
            return await super().__call__(request)
        except HTTPException:
            return None


_basic = _LenientBasic(
    auto_error=False,
    description="Call control only: the API key as the password of HTTP Basic (any user name).",
)
BasicCredentials = Annotated[HTTPBasicCredentials | None, Depends(_basic)]


async def _authenticate(request: Request, key: str | None) -> KeyIdentity:
    """The identity of the API key a request sent (None: it sent none)."""
    throttle: FailedAuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client else ""
    retry_after = await throttle.retry_after(address)
    if retry_after is not None:
        raise TooManyRequests(
            "Too many requests with a missing or wrong key from this address.",
            retry_after=retry_after,
        )
    if key is None:
        await throttle.failed(address)
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    identity = await (await _authenticator(request)).authenticate(key)
    if identity is None:
        await throttle.failed(address)
        raise Unauthorized("The API key is not valid.")
    # For the access line and the audit trail: who acted (the key's id and name, never the key).
    request.state.key_id = str(identity.key_id)
    request.state.tenant_id = str(identity.tenant_id) if identity.tenant_id else None
    acting.set(Actor(key_id=identity.key_id, name=identity.name, role=identity.role.value))
    return identity


async def _current_key(request: Request, credentials: BearerCredentials) -> KeyIdentity:
    return await _authenticate(request, credentials.credentials if credentials else None)


CurrentKey = Annotated[KeyIdentity, Depends(_current_key)]


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The tenant a request acts on, and the key acting."""

    tenant_id: uuid.UUID
    key: KeyIdentity


def _require_role(key: KeyIdentity, roles: tuple[Role, ...]) -> None:
    if key.role not in roles:
        raise Forbidden(f"A key with role {key.role.value} may not do this.")


def _tenant_scope(*roles: Role):  # type: ignore[no-untyped-def]
    async def dependency(
        request: Request,
        db: DatabaseDep,
        key: CurrentKey,
        x_tenant_id: Annotated[
            str | None,
            Header(
                description="With a platform key: the tenant to act on.",
                json_schema_extra={"format": "uuid"},
            ),
        ] = None,
    ) -> TenantScope:
        _require_role(key, roles)
        if key.tenant_id is not None:
            return TenantScope(tenant_id=key.tenant_id, key=key)
        if x_tenant_id is None:
            raise InvalidInput("header.X-Tenant-ID", "A platform key must name a tenant.")
        try:
            tenant_id = uuid.UUID(x_tenant_id)
        except ValueError:
            raise InvalidInput(
                "header.X-Tenant-ID", "Not a valid UUID.", type="uuid_parsing"
            ) from None
        await tenants.require_tenant_exists(db, tenant_id=tenant_id)
        request.state.tenant_id = str(tenant_id)
        return TenantScope(tenant_id=tenant_id, key=key)

    return dependency


def _platform(*roles: Role):  # type: ignore[no-untyped-def]
    async def dependency(key: CurrentKey) -> KeyIdentity:
        if key.tenant_id is not None:
            raise Forbidden("Only a platform key may manage tenants.")
        _require_role(key, roles)
        return key

    return dependency


ReadAccess = Annotated[TenantScope, Depends(_tenant_scope(Role.admin, Role.viewer))]
AdminAccess = Annotated[TenantScope, Depends(_tenant_scope(Role.admin))]
PlatformRead = Annotated[KeyIdentity, Depends(_platform(Role.admin, Role.viewer))]
PlatformAdmin = Annotated[KeyIdentity, Depends(_platform(Role.admin))]


async def _read_tenant(session: SessionDep, scope: ReadAccess) -> Tenant:
    return await tenants.get_tenant(session, tenant_id=scope.tenant_id)


async def _admin_tenant(session: SessionDep, scope: AdminAccess) -> Tenant:
    return await tenants.get_tenant(session, tenant_id=scope.tenant_id)


# The tenant the request acts on, loaded in the request's session.
ReadTenant = Annotated[Tenant, Depends(_read_tenant)]
AdminTenant = Annotated[Tenant, Depends(_admin_tenant)]


IfMatch = Annotated[
    str | None,
    Header(
        description="The ETag the change is based on: a stale one answers 412 and changes "
        "nothing. Without it the write goes through.",
        json_schema_extra={"pattern": IF_MATCH_PATTERN},
    ),
]


async def _read_device(
    device_id: uuid.UUID, session: SessionDep, scope: ReadAccess
) -> TenantDevice:
    return await devices.require_device(session, tenant_id=scope.tenant_id, device_id=device_id)


async def _admin_device(
    device_id: uuid.UUID, session: SessionDep, scope: AdminAccess
) -> TenantDevice:
    return await devices.require_device(session, tenant_id=scope.tenant_id, device_id=device_id)


# The device of the route's `{device_id}`, with its tenant.
ReadDevice = Annotated[TenantDevice, Depends(_read_device)]
AdminDevice = Annotated[TenantDevice, Depends(_admin_device)]


async def _changed_device(
    device_id: uuid.UUID, session: SessionDep, scope: AdminAccess, if_match: IfMatch = None
) -> TenantDevice:
    current = await devices.require_device(
        session, tenant_id=scope.tenant_id, device_id=device_id, for_update=True
    )
    require_match(if_match, current.device.version)
    return current


ChangedDevice = Annotated[TenantDevice, Depends(_changed_device)]


async def _platform_tenant(
    tenant_id: uuid.UUID, session: SessionDep, _key: PlatformAdmin, if_match: IfMatch = None
) -> Tenant:
    tenant = await tenants.get_tenant(session, tenant_id=tenant_id, for_update=True)
    require_match(if_match, tenant.version)
    return tenant


# The tenant of the route's `{tenant_id}`, for a platform admin key (`If-Match` as above).
PlatformTenant = Annotated[Tenant, Depends(_platform_tenant)]


_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")


async def _idempotent_create(
    request: Request,
    key: CurrentKey,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Any unique string (a UUID): a retry with the same key and body gets "
            "the first answer instead of making a second resource; kept for a day.",
            json_schema_extra={"pattern": f"^{_IDEMPOTENCY_KEY.pattern}$"},
        ),
    ] = None,
) -> IdempotentRequest:
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise InvalidInput("header.Idempotency-Key", "must be 1 to 255 printable ASCII characters")
    fingerprint = request_hash(
        request.method,
        request.url.path,
        request.headers.get("x-tenant-id", ""),
        await request.body(),
    )
    return IdempotentRequest(owner_key_id=key.key_id, key=idempotency_key, fingerprint=fingerprint)


IdempotencyDep = Annotated[IdempotentRequest, Depends(_idempotent_create)]


async def _webhook(
    webhook_id: uuid.UUID, session: SessionDep, scope: AdminAccess
) -> WebhookEndpoint:
    return await webhooks.require_endpoint(
        session, tenant_id=scope.tenant_id, endpoint_id=webhook_id
    )


# The webhook endpoint of the route's `{webhook_id}`, for the tenant's admin key.
WebhookDep = Annotated[WebhookEndpoint, Depends(_webhook)]


# A plain dependency, not a yielding one: FastAPI's work per dependency, and more per yielding
# one, is a large share of a registrar lookup.
async def _call_control(
    request: Request, credentials: BearerCredentials, basic: BasicCredentials
) -> CallControl:
    sent = credentials.credentials if credentials else basic.password if basic else None
    key = await _authenticate(request, sent)
    _require_role(key, (Role.call_control, Role.admin))
    return CallControl(
        key=key, store=request.app.state.callcontrol_store, settings=request.app.state.settings
    )


CallControlAccess = Annotated[CallControl, Depends(_call_control)]

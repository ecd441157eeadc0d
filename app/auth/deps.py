"""Who is calling, as `Annotated` aliases: the API key and its authentication, the role a route
needs, the tenant a request acts on (loaded once), and a create's Idempotency-Key, which
belongs to the calling key."""

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from app.auth.models import Role
from app.auth.repository import KeyIdentity
from app.auth.service import Authenticator
from app.auth.throttle import FailedAuthThrottle
from app.deps import DatabaseDep, SessionDep
from app.errors import Code, Forbidden, InvalidInput, TooManyRequests, Unauthorized
from app.idempotency.service import IdempotentRequest, request_hash
from app.outbox.record import Actor, acting
from app.tenants import service as tenants
from app.tenants.models import Tenant


async def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


async def _auth_throttle(request: Request) -> FailedAuthThrottle:
    throttle: FailedAuthThrottle = request.app.state.auth_throttle
    return throttle


AuthenticatorDep = Annotated[Authenticator, Depends(_authenticator)]
# Failed authentications per client address, in this process.
AuthThrottleDep = Annotated[FailedAuthThrottle, Depends(_auth_throttle)]


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ark_...`")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


# Call control only: Kamailio's kept HTTP connections (http_client's `http_connect`) cannot send
# a Bearer header, only the connection's user and password.
class _LenientBasic(HTTPBasic):
    """Malformed Basic credentials are missing credentials: the one 401 (and the failure count)
    of `authenticate`, not a bare exception of its own."""

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


async def authenticate(request: Request, key: str | None) -> KeyIdentity:
    """The identity of the API key a request sent (None: it sent none)."""
    throttle: FailedAuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client else ""
    retry_after = await throttle.retry_after(address)
    if retry_after is not None:
        raise TooManyRequests(Code.too_many_failed_authentications, retry_after=retry_after)
    if key is None:
        await throttle.failed(address)
        raise Unauthorized(Code.api_key_missing)
    identity = await (await _authenticator(request)).authenticate(key)
    if identity is None:
        await throttle.failed(address)
        raise Unauthorized(Code.api_key_invalid)
    # For the access line and the audit trail: who acted (the key's id and name, never the key).
    request.state.key_id = str(identity.key_id)
    request.state.tenant_id = str(identity.tenant_id) if identity.tenant_id else None
    acting.set(Actor(key_id=identity.key_id, name=identity.name, role=identity.role.value))
    return identity


async def _current_key(request: Request, credentials: BearerCredentials) -> KeyIdentity:
    return await authenticate(request, credentials.credentials if credentials else None)


CurrentKey = Annotated[KeyIdentity, Depends(_current_key)]


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The tenant a request acts on, and the key acting."""

    tenant_id: uuid.UUID
    key: KeyIdentity


def require_role(key: KeyIdentity, roles: tuple[Role, ...]) -> None:
    if key.role not in roles:
        raise Forbidden(Code.role_forbidden, role=key.role.value)


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
        require_role(key, roles)
        if key.tenant_id is not None:
            return TenantScope(tenant_id=key.tenant_id, key=key)
        if x_tenant_id is None:
            raise InvalidInput("header.X-Tenant-ID", Code.tenant_required)
        try:
            tenant_id = uuid.UUID(x_tenant_id)
        except ValueError:
            raise InvalidInput("header.X-Tenant-ID", Code.not_a_uuid) from None
        await tenants.require_tenant_exists(db, tenant_id=tenant_id)
        request.state.tenant_id = str(tenant_id)
        return TenantScope(tenant_id=tenant_id, key=key)

    return dependency


def _platform(*roles: Role):  # type: ignore[no-untyped-def]
    async def dependency(key: CurrentKey) -> KeyIdentity:
        if key.tenant_id is not None:
            raise Forbidden(Code.platform_key_required)
        require_role(key, roles)
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
        raise InvalidInput("header.Idempotency-Key", Code.idempotency_key_form)
    fingerprint = request_hash(
        request.method,
        request.url.path,
        request.headers.get("x-tenant-id", ""),
        await request.body(),
    )
    return IdempotentRequest(owner_key_id=key.key_id, key=idempotency_key, fingerprint=fingerprint)


IdempotencyDep = Annotated[IdempotentRequest, Depends(_idempotent_create)]

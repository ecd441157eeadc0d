"""Who is calling, as `Annotated` aliases: the caller (an API key, or a token from the identity
provider) and its authentication, the role a route needs, the tenant a request acts on (loaded
once), and a create's Idempotency-Key, which belongs to the caller."""

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

from app.auth.exceptions import IdentityProviderUnavailable, InvalidToken, TokenNotAccepted
from app.auth.models import Role
from app.auth.principal import ActorKind, Principal
from app.auth.service import Authenticator
from app.auth.throttle import FailedAuthThrottle
from app.auth.tokens import (
    ClaimRejected,
    ProviderUnavailable,
    TokenRejected,
    TokenVerifier,
    looks_like_token,
)
from app.clock import utcnow
from app.crypto import API_KEY_PREFIX
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


_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`Authorization: Bearer ark_...`), or an access token from the "
    "identity provider (`Authorization: Bearer eyJ...`).",
)
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
    scheme_name="CallControlBasic",
    auto_error=False,
    description="Call control only, for SIP edges whose HTTP client cannot send a Bearer "
    "header (Kamailio's kept connections): a `call_control` or `admin` API key as the password "
    "of HTTP Basic; the user name is not read.",
)
BasicCredentials = Annotated[HTTPBasicCredentials | None, Depends(_basic)]


async def authenticate(request: Request, credential: str | None) -> Principal:
    """Who sent a request: the API key or the token in it (None: it sent neither)."""
    throttle: FailedAuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client else ""
    retry_after = await throttle.retry_after(address)
    if retry_after is not None:
        raise TooManyRequests(Code.too_many_failed_authentications, retry_after=retry_after)
    if credential is None:
        await throttle.failed(address)
        raise Unauthorized(Code.api_key_missing)
    verifier: TokenVerifier | None = request.app.state.token_verifier
    if verifier is not None and not credential.startswith(API_KEY_PREFIX):
        if not looks_like_token(credential):
            await throttle.failed(address)
            raise Unauthorized(Code.credential_not_recognised)
        try:
            principal = await verifier.verify(credential)
        except TokenRejected as exc:
            await throttle.failed(address)
            raise InvalidToken(exc.rule, **exc.params) from None
        except ClaimRejected as exc:
            raise TokenNotAccepted(exc.rule, claim=exc.claim, **exc.params) from None
        except ProviderUnavailable:
            raise IdentityProviderUnavailable() from None
    else:
        found = await (await _authenticator(request)).authenticate(credential)
        if found is None:
            await throttle.failed(address)
            raise Unauthorized(Code.api_key_invalid)
        if found.expires_at is not None and found.expires_at <= utcnow():
            await throttle.failed(address)
            raise Unauthorized(Code.api_key_expired, expired_at=found.expires_at.isoformat())
        principal = found
    # For the access line and the audit trail: who acted (never the key or the token).
    request.state.key_id = str(principal.id)
    request.state.tenant_id = str(principal.tenant_id) if principal.tenant_id else None
    acting.set(
        Actor(
            kind=principal.kind.value,
            id=principal.actor_id,
            name=principal.name,
            role=principal.role.value,
            key_id=principal.id if principal.kind is ActorKind.api_key else None,
            email=principal.email,
            client_id=principal.client_id,
            address=address or None,
        )
    )
    return principal


async def _current_principal(request: Request, credentials: BearerCredentials) -> Principal:
    return await authenticate(request, credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The tenant a request acts on, and who is acting."""

    tenant_id: uuid.UUID
    principal: Principal


def require_role(principal: Principal, roles: tuple[Role, ...]) -> None:
    if principal.role not in roles:
        raise Forbidden(Code.role_forbidden, role=principal.role.value)


def _tenant_scope(*roles: Role):  # type: ignore[no-untyped-def]
    async def dependency(
        request: Request,
        db: DatabaseDep,
        principal: CurrentPrincipal,
        x_tenant_id: Annotated[
            str | None,
            Header(
                description="With a platform key: the tenant to act on.",
                json_schema_extra={"format": "uuid"},
            ),
        ] = None,
    ) -> TenantScope:
        require_role(principal, roles)
        if principal.tenant_id is not None:
            return TenantScope(tenant_id=principal.tenant_id, principal=principal)
        if x_tenant_id is None:
            raise InvalidInput("header.X-Tenant-ID", Code.tenant_required)
        try:
            tenant_id = uuid.UUID(x_tenant_id)
        except ValueError:
            raise InvalidInput("header.X-Tenant-ID", Code.not_a_uuid) from None
        await tenants.require_tenant_exists(db, tenant_id=tenant_id)
        request.state.tenant_id = str(tenant_id)
        return TenantScope(tenant_id=tenant_id, principal=principal)

    # Read by app/auth/openapi.py, which writes each route's roles into the document.
    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


def _platform(*roles: Role):  # type: ignore[no-untyped-def]
    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.tenant_id is not None:
            raise Forbidden(Code.platform_key_required)
        require_role(principal, roles)
        return principal

    dependency.roles = roles  # type: ignore[attr-defined]
    dependency.platform = True  # type: ignore[attr-defined]
    return dependency


def _tenant_keys(*roles: Role):  # type: ignore[no-untyped-def]
    """A tenant's API keys (`{tenant_id}` in the path): a platform key, or the tenant's own
    admin; never another tenant's."""

    async def dependency(tenant_id: uuid.UUID, principal: CurrentPrincipal) -> Principal:
        if principal.tenant_id is not None and principal.tenant_id != tenant_id:
            raise Forbidden(Code.tenant_keys_forbidden)
        require_role(principal, roles)
        return principal

    dependency.roles = roles  # type: ignore[attr-defined]
    return dependency


# Reading a tenant's agents: every role of people.
ReadAccess = Annotated[TenantScope, Depends(_tenant_scope(Role.admin, Role.operator, Role.viewer))]
# What the guide's operators do: agents, devices, extensions, quotas, switches, imports.
EditAccess = Annotated[TenantScope, Depends(_tenant_scope(Role.admin, Role.operator))]
# The tenant's settings, webhooks, keys and audit trail.
AdminAccess = Annotated[TenantScope, Depends(_tenant_scope(Role.admin))]
# A tenant's SCIM directory: its own role only (an admin key is never handed to a directory,
# and a directory's credential reaches nothing but /scim/v2).
ScimAccess = Annotated[TenantScope, Depends(_tenant_scope(Role.scim))]
PlatformRead = Annotated[Principal, Depends(_platform(Role.admin, Role.viewer))]
PlatformAdmin = Annotated[Principal, Depends(_platform(Role.admin))]
TenantKeysRead = Annotated[Principal, Depends(_tenant_keys(Role.admin, Role.viewer))]
TenantKeysAdmin = Annotated[Principal, Depends(_tenant_keys(Role.admin))]


async def _read_tenant(session: SessionDep, scope: ReadAccess) -> Tenant:
    return await tenants.get_tenant(session, tenant_id=scope.tenant_id)


async def _edit_tenant(session: SessionDep, scope: EditAccess) -> Tenant:
    return await tenants.get_tenant(session, tenant_id=scope.tenant_id)


# The tenant the request acts on, loaded in the request's session.
ReadTenant = Annotated[Tenant, Depends(_read_tenant)]
EditTenant = Annotated[Tenant, Depends(_edit_tenant)]


_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,255}")


async def _idempotent_create(
    request: Request,
    principal: CurrentPrincipal,
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
    return IdempotentRequest(
        owner_key_id=principal.id, key=idempotency_key, fingerprint=fingerprint
    )


IdempotencyDep = Annotated[IdempotentRequest, Depends(_idempotent_create)]

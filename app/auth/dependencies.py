"""Who is calling, and what they may do: the access aliases every router uses."""

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.models import Role
from app.auth.repository import KeyIdentity
from app.auth.service import Authenticator
from app.database import Database, HotConnection, get_database
from app.errors import Forbidden, InvalidInput, Unauthorized
from app.settings import Settings
from app.tenants.exceptions import TenantNotFound
from app.tenants.repository import tenant_exists

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ark_...`")


# Dependencies are async: FastAPI runs a sync one in a worker thread, a cost on every request.
async def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_key(request: Request, credentials: BearerCredentials) -> KeyIdentity:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    identity = await (await get_authenticator(request)).authenticate(credentials.credentials)
    if identity is None:
        raise Unauthorized("The API key is not valid.")
    return identity


CurrentKey = Annotated[KeyIdentity, Depends(current_key)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]


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
        key: CurrentKey,
        x_tenant_id: Annotated[
            str | None,
            Header(description="With a platform key: the tenant to act on."),
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
        async with get_database(request).engine.connect() as conn:
            if not await tenant_exists(conn, tenant_id=tenant_id):
                raise TenantNotFound(f"No tenant {tenant_id}.")
        return TenantScope(tenant_id=tenant_id, key=key)

    return dependency


def _platform(*roles: Role):  # type: ignore[no-untyped-def]
    async def dependency(key: CurrentKey) -> KeyIdentity:
        if key.tenant_id is not None:
            raise Forbidden("Only a platform key may manage tenants.")
        _require_role(key, roles)
        return key

    return dependency


@dataclass(frozen=True, slots=True)
class CallControl:
    """An authenticated call-control request, and the connection its route takes for its work
    (given back, with its work committed, before the response is sent)."""

    key: KeyIdentity
    db: Database
    settings: Settings

    def connection(self) -> AbstractAsyncContextManager[HotConnection]:
        return self.db.hot_connection()


# A plain dependency, not a yielding one: FastAPI's work per dependency, and more per yielding
# one, is a large share of a registrar lookup.
async def _call_control(request: Request, credentials: BearerCredentials) -> CallControl:
    key = await current_key(request, credentials)
    _require_role(key, (Role.call_control, Role.admin))
    settings: Settings = request.app.state.settings
    return CallControl(key=key, db=get_database(request), settings=settings)


ReadAccess = Annotated[TenantScope, Depends(_tenant_scope(Role.admin, Role.viewer))]
AdminAccess = Annotated[TenantScope, Depends(_tenant_scope(Role.admin))]
PlatformRead = Annotated[KeyIdentity, Depends(_platform(Role.admin, Role.viewer))]
PlatformAdmin = Annotated[KeyIdentity, Depends(_platform(Role.admin))]
CallControlAccess = Annotated[CallControl, Depends(_call_control)]

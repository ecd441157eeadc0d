"""API keys: creation, revocation, and the authentication of a bearer token."""

import asyncio
import time
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.auth import repository
from app.auth.exceptions import ApiKeyNotFound
from app.auth.models import ApiKey, Role
from app.auth.principal import Principal
from app.auth.tokens import TokenVerifier
from app.clock import utcnow
from app.crypto import API_KEY_PREFIX, generate_api_key, hash_api_key
from app.outbox import record as outbox
from app.settings import Settings
from app.tenants import repository as tenants
from app.tenants.exceptions import TenantNotFound


async def _require_tenant(session: AsyncSession, tenant_id: uuid.UUID | None) -> None:
    if tenant_id is not None and await tenants.get_tenant(session, tenant_id=tenant_id) is None:
        raise TenantNotFound(tenant_id=str(tenant_id))


async def create_api_key(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    role: Role,
    name: str,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key (a platform key when tenant_id is None); the secret is returned here once
    and only its hash is stored."""
    await _require_tenant(session, tenant_id)
    secret = generate_api_key()
    key = ApiKey(
        tenant_id=tenant_id,
        role=role,
        name=name,
        prefix=secret[: len(API_KEY_PREFIX) + 6],
        key_hash=hash_api_key(secret),
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    shown = outbox.snapshot(key, ("name", "role", "prefix", "expires_at"))
    await outbox.record(
        session,
        type="api_key.created",
        tenant_id=tenant_id,
        resource_type="api_key",
        resource_id=key.id,
        data=shown,
        after=shown,
    )
    return key, secret


async def list_api_keys(session: AsyncSession, *, tenant_id: uuid.UUID | None) -> list[ApiKey]:
    """A tenant's keys, or (tenant_id None) the platform keys."""
    await _require_tenant(session, tenant_id)
    return await repository.list_keys(session, tenant_id=tenant_id)


class Authenticator:
    """Checks API keys against stored key hashes, with a short per-process cache.

    The cache keeps the hot call-control paths at one database round trip; a key revoked through
    this process stops working at once, elsewhere within `ttl` seconds.
    """

    def __init__(self, engine: AsyncEngine, *, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._pending: dict[str, asyncio.Future[Principal | None]] = {}

    async def authenticate(self, token: str) -> Principal | None:
        key_hash = hash_api_key(token)
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # When an entry expires under load, one request looks the key up and the others wait for
        # it, instead of all of them updating the same row at once.
        pending = self._pending.get(key_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._pending[key_hash] = future
        try:
            async with self._engine.begin() as conn:
                identity = await repository.touch_key(conn, key_hash=key_hash, now=utcnow())
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited failure is not reported twice
            raise
        else:
            future.set_result(identity)
        finally:
            del self._pending[key_hash]
        if self._ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_hash] = (time.monotonic() + self._ttl, identity)
        return identity

    def forget(self, key_hash: str) -> None:
        self._cache.pop(key_hash, None)


async def revoke_api_key(
    session: AsyncSession,
    authenticator: Authenticator | None,
    *,
    tenant_id: uuid.UUID | None,
    key_id: uuid.UUID,
) -> None:
    await _require_tenant(session, tenant_id)
    key_hash = await repository.delete_key(session, tenant_id=tenant_id, key_id=key_id)
    if key_hash is None:
        raise ApiKeyNotFound(key_id=str(key_id))
    await outbox.record(
        session,
        type="api_key.revoked",
        tenant_id=tenant_id,
        resource_type="api_key",
        resource_id=key_id,
    )
    if authenticator is not None:
        authenticator.forget(key_hash)


def token_verifier(settings: Settings, engine: AsyncEngine) -> TokenVerifier | None:
    """The check of the identity provider's tokens, when one is configured."""
    if not settings.oidc_issuer:
        return None

    async def tenant_exists(tenant_id: uuid.UUID) -> bool:
        async with engine.connect() as conn:
            return await tenants.tenant_exists(conn, tenant_id=tenant_id)

    return TokenVerifier(
        settings, tenant_exists=tenant_exists, cache_seconds=settings.api_key_cache_seconds
    )
